"""Compare two NLU models (the current one and a candidate) on the same named example sets.

:func:`compare_models` parses every set with both models and scores each with
:func:`training.evaluation.evaluate_predictions`, then lines the two up: overall deltas, per-intent F1 deltas
(intents only one model knows are marked as such), confusions that are new or grew, out-of-scope recall and
in-scope accuracy (each model's parse results already apply its own thresholds) and calibration (ECE).

An intent the current model does not know (one the new data added) can never be predicted by it, so its
examples count as wrong for the current model: the comparison lists those intents and how many examples
they have, and the report says so.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from nlu.labels import OOS_LABELS
from nlu.schema import Example
from training.evaluation import evaluate_predictions

if TYPE_CHECKING:
    from nlu.inference import NLUModel

log = logging.getLogger(__name__)

#: The overall metrics compared (those a set has; ``ece`` is read from ``calibration``).
COMPARED = ("intent_accuracy", "intent_macro_f1", "intent_micro_f1", "slot_f1", "exact_match", "joint_score",
            "in_scope_accuracy", "oos_recall", "oos_precision", "oos_f1", "oos_balanced", "ece")
#: A confusion that grew by at least this many examples is reported as newly confused.
CONFUSION_GROWTH = 2


@dataclass
class IntentDelta:
    """One intent's F1 under both models; ``known_by`` is ``both``, ``old only`` or ``new only``."""

    intent: str
    support: int
    old_f1: float | None
    new_f1: float | None
    delta: float | None
    known_by: str


@dataclass
class ConfusionChange:
    """A (gold, predicted) confusion the candidate makes more often than the current model."""

    gold: str
    predicted: str
    old_count: int
    new_count: int


@dataclass
class SetComparison:
    """Both models on one named set."""

    name: str
    n: int
    primary_metric: str
    old: dict[str, Any] | None
    new: dict[str, Any]
    deltas: dict[str, float] = field(default_factory=dict)
    per_intent: list[IntentDelta] = field(default_factory=list)
    newly_confused: list[ConfusionChange] = field(default_factory=list)
    #: gold intents the current model cannot predict, with their number of examples
    unknown_to_old: dict[str, int] = field(default_factory=dict)
    #: gold intents the candidate cannot predict (dropped labels), with their number of examples
    unknown_to_new: dict[str, int] = field(default_factory=dict)

    def value(self, side: str, metric: str) -> float | None:
        """``metric`` of ``old`` or ``new`` as a number (ECE from ``calibration``), None when not measured."""
        metrics = self.old if side == "old" else self.new
        return _number(metrics, metric) if metrics is not None else None


@dataclass
class Comparison:
    """Current model (``old``; None at the first training) against candidate (``new``) on each named set."""

    old_version: str | None
    new_version: str
    sets: dict[str, SetComparison]
    #: each model's out-of-scope thresholds, as its parse results applied them
    old_thresholds: dict[str, Any] | None = None
    new_thresholds: dict[str, Any] = field(default_factory=dict)
    #: the label whose gold examples count as out of scope (None: no set has any)
    oos_label: str | None = None

    @property
    def has_old(self) -> bool:
        return self.old_version is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number(metrics: Mapping[str, Any], metric: str) -> float | None:
    value = (metrics.get("calibration") or {}).get("ece") if metric == "ece" else metrics.get(metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _thresholds(model: NLUModel) -> dict[str, Any]:
    return {
        "oos_score": model.oos_score,
        "oos_threshold": model.oos_threshold,
        "neighbour_threshold": model.neighbour_threshold if model.neighbours is not None else None,
        "intent_threshold": model.intent_threshold,
    }


def _known(model: NLUModel) -> set[str]:
    return set(model.labels.intents)


def find_oos_label(models: Sequence[NLUModel | None], sets: Mapping[str, Sequence[Example]]) -> str | None:
    """The out-of-scope label of the gold data: a model's own when the gold uses it, else a conventional name."""
    gold = {label for examples in sets.values() for ex in examples for label in ex.intents}
    for model in models:
        if model is not None and model.labels.oos_label in gold:
            return model.labels.oos_label
    return next((name for name in sorted(gold) if name.lower() in OOS_LABELS), None)


def _per_intent(old: Mapping[str, Any], new: Mapping[str, Any], old_known: set[str], new_known: set[str],
                oos_label: str | None) -> list[IntentDelta]:
    old_rows, new_rows = old.get("per_intent") or {}, new.get("per_intent") or {}
    rows = []
    for intent in sorted(set(old_rows) | set(new_rows)):
        in_old = intent in old_known or intent == oos_label
        in_new = intent in new_known or intent == oos_label
        known_by = "both" if in_old and in_new else "old only" if in_old else "new only" if in_new else "neither"
        old_f1 = old_rows.get(intent, {}).get("f1", 0.0)
        new_f1 = new_rows.get(intent, {}).get("f1", 0.0)
        support = int((new_rows.get(intent) or old_rows.get(intent) or {}).get("support", 0))
        rows.append(IntentDelta(intent, support, old_f1, new_f1, new_f1 - old_f1, known_by))
    return rows


def _newly_confused(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[ConfusionChange]:
    def counts(metrics: Mapping[str, Any]) -> dict[tuple[str, str], int]:
        return {(g, p): int(c) for g, p, c in metrics.get("confusion") or metrics.get("confused_pairs") or []
                if g != p}

    before, after = counts(old), counts(new)
    changes = [ConfusionChange(g, p, before.get((g, p), 0), c) for (g, p), c in after.items()
               if before.get((g, p), 0) == 0 or c - before[(g, p)] >= CONFUSION_GROWTH]
    return sorted(changes, key=lambda ch: (-(ch.new_count - ch.old_count), ch.gold, ch.predicted))


def _gold_counts(examples: Sequence[Example], known: set[str], oos_label: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for ex in examples:
        for label in ex.intents:
            if label not in known and label != oos_label:
                out[label] = out.get(label, 0) + 1
    return dict(sorted(out.items()))


def compare_set(name: str, examples: Sequence[Example], old: NLUModel | None, new: NLUModel,
                oos_label: str | None) -> SetComparison:
    """Both models (or the candidate alone when ``old`` is None) on one set."""
    gold = list(examples)
    if not gold:
        raise ValueError(f"cannot compare on the set {name!r}: it has no examples")
    texts = [ex.text for ex in gold]
    new_metrics = evaluate_predictions(gold, new.parse(texts), oos_label=oos_label)
    result = SetComparison(name=name, n=len(gold), primary_metric=new_metrics["primary_metric"], old=None,
                           new=new_metrics, unknown_to_new=_gold_counts(gold, _known(new), oos_label))
    if old is None:
        return result
    old_metrics = evaluate_predictions(gold, old.parse(texts), oos_label=oos_label)
    if old_metrics["primary_metric"] != result.primary_metric:
        log.warning("set %s: the models' evaluations name different primary metrics (%s, %s); %s is compared",
                    name, old_metrics["primary_metric"], result.primary_metric, result.primary_metric)
    result.old = old_metrics
    for metric in COMPARED:
        before, after = _number(old_metrics, metric), _number(new_metrics, metric)
        if before is not None and after is not None:
            result.deltas[metric] = after - before
    result.per_intent = _per_intent(old_metrics, new_metrics, _known(old), _known(new), oos_label)
    result.newly_confused = _newly_confused(old_metrics, new_metrics)
    result.unknown_to_old = _gold_counts(gold, _known(old), oos_label)
    return result


def compare_models(old: NLUModel | None, new: NLUModel, sets: Mapping[str, Sequence[Example]]) -> Comparison:
    """Evaluate ``old`` (the current model; None when there is none yet) and ``new`` on each named set.

    Each set is parsed by both models; every metric comes from
    :func:`~training.evaluation.evaluate_predictions` with the same out-of-scope label for both
    (:func:`find_oos_label`). Raises ValueError for an empty set or when no set is given.
    """
    if not sets:
        raise ValueError("no example sets to compare the models on")
    oos_label = find_oos_label([new, old], sets)
    compared = {name: compare_set(name, examples, old, new, oos_label) for name, examples in sets.items()}
    return Comparison(
        old_version=(old.version or "(unsaved)") if old is not None else None,
        new_version=new.version or "(unsaved)",
        sets=compared,
        old_thresholds=_thresholds(old) if old is not None else None,
        new_thresholds=_thresholds(new),
        oos_label=oos_label,
    )


__all__ = ["COMPARED", "Comparison", "ConfusionChange", "IntentDelta", "SetComparison", "compare_models",
           "compare_set", "find_oos_label"]
