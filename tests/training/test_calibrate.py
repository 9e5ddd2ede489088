"""Calibration on dev logits (training.calibrate) and the training display (training.progress), without a model."""

from __future__ import annotations

import logging

import numpy as np

from nlu.labels import LabelMaps
from nlu.schema import Example
from training.calibrate import calibrate, has_oos_examples
from training.config import TrainingConfig
from training.progress import TrainingProgress, epoch_line


def dev_set(seed=0, n=300):
    """Dev examples of intents a, b and oos with logits that mostly favour the right one."""
    rng = np.random.default_rng(seed)
    names = ["a", "b", "oos"]
    gold = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), gold] += 3.0
    logits[gold == 2, :2] -= 2.0  # out-of-scope texts excite the in-scope intents less
    examples = [Example(f"text {i}", names[g]) for i, g in enumerate(gold)]
    return examples, logits.astype(np.float32)


def test_without_out_of_scope_dev_data_the_configured_threshold_stays():
    examples, logits = dev_set()
    examples = [e for e in examples if e.intent != "oos"]
    logits = logits[: len(examples)]
    labels = LabelMaps.from_examples(examples)
    assert not has_oos_examples(examples, labels)
    result = calibrate(logits[:, :2], examples, labels, TrainingConfig(oos_threshold=0.3))
    assert result.threshold_source == "config" and result.oos_threshold == 0.3
    assert result.temperature > 0 and result.ece_after is not None


def test_with_out_of_scope_dev_data_a_score_and_threshold_are_chosen():
    examples, logits = dev_set()
    labels = LabelMaps.from_examples(examples)
    assert labels.oos_label == "oos" and has_oos_examples(examples, labels)
    result = calibrate(logits, examples, labels, TrainingConfig(oos_score="auto", oos_max_in_scope_cost=0.02))
    assert result.threshold_source == "dev"
    assert result.oos_score in ("probability", "energy") and set(result.oos_dev) == {"probability", "energy"}
    chosen = result.oos_dev[result.oos_score]
    assert result.oos_threshold == chosen["threshold"]
    assert chosen["in_scope_accuracy"] >= chosen["in_scope_accuracy_before"] - 0.02 - 1e-9
    only_energy = calibrate(logits, examples, labels, TrainingConfig(oos_score="energy"))
    assert only_energy.oos_score == "energy" and set(only_energy.oos_dev) == {"energy"}


def test_epoch_lines_and_a_silent_progress_log_them(caplog):
    record = {"epoch": 2, "loss": 0.5, "seconds": 3.2, "dev_primary": "intent_accuracy", "dev_score": 0.9,
              "dev_intent_accuracy": 0.9, "dev_slot_f1": None}
    assert epoch_line(record) == "epoch 2 · loss 0.5000 · dev intent_accuracy 0.9000 · intent acc 0.9000 · 3s"
    assert epoch_line({"epoch": 1, "loss": None, "seconds": 1}) == "epoch 1 · 1s"
    with caplog.at_level(logging.INFO, logger="training.progress"), TrainingProgress(10, show=False) as progress:
        progress.step(0.5)
        progress.epoch(record)
    assert "epoch 2 · loss 0.5000" in caplog.text


def in_scope_dev(seed=1, n=400):
    """In-scope dev examples of four intents whose logits are right about 85% of the time."""
    rng = np.random.default_rng(seed)
    names = ["a", "b", "c", "d"]
    gold = rng.integers(0, 4, n)
    logits = rng.normal(0, 1.5, (n, 4))
    logits[np.arange(n), gold] += 2.5
    return [Example(f"text {i}", names[g]) for i, g in enumerate(gold)], logits.astype(np.float32), gold


def test_the_intent_threshold_is_the_lowest_confidence_whose_dev_answers_are_right_often_enough():
    examples, logits, gold = in_scope_dev()
    labels = LabelMaps.from_examples(examples)
    result = calibrate(logits, examples, labels, TrainingConfig(answer_precision=0.95))
    probs = np.exp(logits / result.temperature)
    probs /= probs.sum(1, keepdims=True)
    confidence, right = probs.max(1), probs.argmax(1) == gold
    assert right.mean() < 0.95  # the rule has to act
    assert result.intent_precision == 0.95 and 0 < result.intent_threshold < 1
    given = confidence >= result.intent_threshold - 1e-6
    assert right[given].mean() >= 0.95
    lower = confidence[~given].max()  # one more answer, from the next most confident: below the target
    assert right[confidence >= lower].mean() < 0.95
    looser = calibrate(logits, examples, labels, TrainingConfig(answer_precision=0.9))
    assert looser.intent_threshold < result.intent_threshold


def test_no_intent_threshold_when_switched_off_or_dev_is_too_small():
    examples, logits, _ = in_scope_dev()
    labels = LabelMaps.from_examples(examples)
    off = calibrate(logits, examples, labels, TrainingConfig(answer_precision=0))
    assert off.intent_threshold is None and off.intent_precision is None
    small = calibrate(logits[:20], examples[:20], labels, TrainingConfig())
    assert small.intent_threshold is None


def test_out_of_scope_dev_examples_do_not_count_toward_the_intent_threshold():
    examples, logits = dev_set()
    labels = LabelMaps.from_examples(examples)
    with_oos = calibrate(logits, examples, labels, TrainingConfig(answer_precision=0.97))
    keep = np.array([e.intent != "oos" for e in examples])
    in_scope = [e for e in examples if e.intent != "oos"]
    probs = np.exp(logits[keep] / with_oos.temperature)
    probs /= probs.sum(1, keepdims=True)
    gold = np.array([labels.intent_id(e.intent) for e in in_scope])
    given = probs.max(1) >= with_oos.intent_threshold - 1e-6
    assert given.sum() < len(in_scope) or (probs.argmax(1) == gold).mean() >= 0.97
    assert (probs.argmax(1) == gold)[given].mean() >= 0.97
