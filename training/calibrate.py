"""Calibrating a trained model on the dev set: the temperature, then the out-of-scope score and threshold.

The maths lives in :mod:`nlu.calibration`; this module applies it to dev logits with the training
options (``oos_score``, ``oos_max_in_scope_cost``, the fallback ``oos_threshold``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from csbot import thresholds
from csbot.thresholds import acceptance_threshold, precision_threshold
from nlu.calibration import (
    OOS_SCORES,
    Calibration,
    choose_oos_threshold,
    expected_calibration_error,
    fit_temperature,
    oos_scores,
    sigmoid,
    softmax,
)
from nlu.labels import LabelMaps
from nlu.neighbours import NeighbourBank, sample_per_intent
from nlu.schema import Example
from training.config import TrainingConfig

log = logging.getLogger(__name__)


def has_oos_examples(examples: Sequence[Example], labels: LabelMaps) -> bool:
    """Whether ``examples`` hold any of the out-of-scope label (so a threshold can be chosen on them)."""
    oos = labels.oos_label
    return oos is not None and any(ex.intent == oos for ex in examples)


def calibrate(
    logits: np.ndarray, dev: Sequence[Example], labels: LabelMaps, config: TrainingConfig
) -> Calibration:
    """Fit the temperature on dev ``logits`` (one row per dev example), then the out-of-scope threshold when
    dev has such examples; the configured threshold otherwise."""
    if labels.multi_label:
        targets = np.zeros_like(logits)
        for row, ex in enumerate(dev):
            for name in ex.intents:
                targets[row, labels.intent_id(name)] = 1.0
        temperature = fit_temperature(logits, targets, multi_label=True)
        before, after = sigmoid(logits), sigmoid(logits, temperature)
        ece = [expected_calibration_error(p.ravel(), targets.ravel()) for p in (before, after)]
        return Calibration(temperature, config.oos_threshold, "config", ece[0], ece[1])

    gold = np.array([labels.intent_id(ex.intent) for ex in dev])
    temperature = fit_temperature(logits, gold)
    before, after = softmax(logits), softmax(logits, temperature)
    correct = before.argmax(1) == gold
    ece = [expected_calibration_error(p.max(1), correct) for p in (before, after)]
    calibration = Calibration(temperature, config.oos_threshold, "config", ece[0], ece[1])
    if has_oos_examples(dev, labels):
        choose_oos(calibration, logits, gold, labels, config)
    choose_intent_threshold(calibration, after, gold, labels, config)
    return calibration


def choose_intent_threshold(calibration: Calibration, probs: np.ndarray, gold: np.ndarray, labels: LabelMaps,
                            config: TrainingConfig) -> None:
    """The confidence the model's answers need, by rule on the in-scope dev messages: the lowest at which the
    answers given are right ``answer_precision`` of the time (calibrated probabilities; the out-of-scope label, if
    any, is left out). Dev is also the early-stopping set, so its precision is a little optimistic: the target is
    set above what a team asks of the whole bot. Unset when ``answer_precision`` is 0 or dev is too small."""
    if config.answer_precision <= 0:
        return
    oos = labels.intent_id(labels.oos_label) if labels.oos_label is not None else None
    in_scope = gold != oos if oos is not None else np.ones(len(gold), dtype=bool)
    confidence, predicted = probs.max(1), probs.argmax(1)
    threshold = precision_threshold(confidence[in_scope], (predicted == gold)[in_scope], config.answer_precision,
                                    thresholds.MIN_PRECISION_EXAMPLES)
    if threshold is None:
        log.info("dev has too few in-scope messages to choose the intent threshold; the domain's default applies")
        return
    calibration.intent_threshold = round(min(threshold, 1.0), 6)
    calibration.intent_precision = config.answer_precision
    log.info("intent threshold %.4f: answers on dev right %.0f%% of the time", calibration.intent_threshold,
             100 * config.answer_precision)


def choose_oos(
    calibration: Calibration, logits: np.ndarray, gold: np.ndarray, labels: LabelMaps, config: TrainingConfig
) -> None:
    """Pick the out-of-scope score and its threshold on dev (most OOS recall within the allowed cost).

    Sets ``oos_score``, ``oos_threshold``, ``threshold_source="dev"`` and ``oos_dev`` (each candidate's
    threshold, recall and in-scope accuracy) on ``calibration``.
    """
    oos_id = labels.intent_id(labels.oos_label)
    predicted_oos = logits.argmax(1) == oos_id
    is_oos = gold == oos_id
    correct = (logits.argmax(1) == gold)[~is_oos]
    names = OOS_SCORES if config.oos_score == "auto" else (config.oos_score,)
    results: dict[str, dict] = {}
    for name in names:
        scores = oos_scores(logits, name, calibration.temperature, oos_id)
        scores = np.where(predicted_oos, -np.inf, scores)
        threshold, info = choose_oos_threshold(
            scores[~is_oos], correct, scores[is_oos], config.oos_max_in_scope_cost
        )
        results[name] = {"threshold": threshold, **info}
    # Most recall first; then the in-scope accuracy kept; the plain probability wins a full tie.
    chosen = max(names, key=lambda n: (results[n]["oos_recall"], results[n]["in_scope_accuracy"], n == "probability"))
    calibration.oos_score = chosen
    calibration.oos_threshold = float(results[chosen]["threshold"])
    calibration.threshold_source = "dev"
    calibration.oos_dev = results
    log.debug("out-of-scope score %s, threshold %.4f chosen on dev: %s", chosen, calibration.oos_threshold, results)


def uses_neighbours(dev: Sequence[Example], labels: LabelMaps, config: TrainingConfig) -> bool:
    """Whether the model gets the neighbour detector: always, never, or (auto) when dev has no out-of-scope data."""
    if config.oos_detector == "auto":
        return bool(dev) and not has_oos_examples(dev, labels)
    return config.oos_detector == "neighbours" and bool(dev)


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


def calibrate_neighbours(calibration: Calibration, train_pooled: np.ndarray, train: Sequence[Example],
                         dev: Sequence[Example], dev_pooled: np.ndarray, config: TrainingConfig) -> NeighbourBank | None:
    """The neighbour bank from the training examples' pooled vectors, and its threshold on dev (None, and no
    detector, when no dev message can be scored).

    The threshold keeps ``oos_accept_rate`` of the dev messages (all in scope here: dev's out-of-scope
    examples, if any, are left out), so it is set by a rule on data the model never trained on. The plain
    probability threshold is then off (``oos_threshold`` 0): a low confidence on a message close to the
    training data is the dialogue policy's business (``thresholds.intent``), not out of scope.
    """
    rows = sample_per_intent([ex.intent for ex in train], config.oos_neighbours_per_intent, config.seed)
    bank = NeighbourBank(train_pooled[rows], config.oos_neighbours_k)
    # a dev message that is also a training example (a --dev that overlaps --data) is scored against the others
    bank_texts = np.array([_key(train[row].text) for row in rows])
    same = np.array([_key(ex.text) for ex in dev])[:, None] == bank_texts[None, :]
    scores = bank.scores(dev_pooled, exclude=same if same.any() else None)
    scores = scores[np.isfinite(scores)]
    if not scores.size:
        log.warning("no dev message to choose the out-of-scope neighbour threshold on; the model has no such detector")
        return None
    calibration.neighbour_threshold = round(acceptance_threshold(scores, config.oos_accept_rate), 6)
    calibration.neighbour_k = bank.k
    calibration.neighbour_accept_rate = config.oos_accept_rate
    calibration.neighbour_dev_size = len(scores)
    if calibration.threshold_source != "dev":
        calibration.oos_threshold, calibration.threshold_source = 0.0, "neighbours"
    log.info("out-of-scope neighbour threshold %.4f keeps %.0f%% of %d dev messages (bank of %d examples)",
             calibration.neighbour_threshold, 100 * config.oos_accept_rate, len(scores), len(bank.vectors))
    return bank


__all__ = ["calibrate", "calibrate_neighbours", "choose_intent_threshold", "choose_oos", "has_oos_examples", "uses_neighbours"]
