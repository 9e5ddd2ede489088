"""The promotion gate: may a candidate model replace the current one?

:func:`decide` passes a candidate only when, on every compared set, its primary metric is at least the current
model's minus ``tolerance``. The primary metric of a set is the one its evaluation names
(:func:`training.evaluation.evaluate_predictions`: ``oos_balanced`` when the set has out-of-scope gold,
``joint_score`` when it has entities, ``intent_micro_f1`` for multi-label data, ``intent_accuracy``
otherwise), unless the caller names one metric for every set. Each set's verdict is a plain sentence in
:attr:`GateDecision.reasons`; :meth:`GateDecision.to_dict` is what a registry entry stores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from training.compare import Comparison

#: Rounding slack, so a drop of exactly the tolerance passes.
_EPS = 1e-9


@dataclass
class SetVerdict:
    """The gate's look at one set."""

    set: str
    metric: str
    old: float | None
    new: float | None
    delta: float | None
    passed: bool


@dataclass
class GateDecision:
    """Whether the candidate may be promoted, why, and the numbers behind it."""

    passed: bool
    reasons: list[str]
    tolerance: float
    sets: list[SetVerdict] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateDecision:
        return cls(passed=bool(data["passed"]), reasons=list(data["reasons"]), tolerance=float(data["tolerance"]),
                   sets=[SetVerdict(**row) for row in data.get("sets") or []])


def no_current_model(tolerance: float = 0.0) -> GateDecision:
    """The decision at the first training: nothing to compare with, so the candidate passes."""
    return GateDecision(True, ["no current model: the candidate is the first model and passes"], tolerance)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def decide(comparison: Comparison | None, tolerance: float, primary: str | None = None) -> GateDecision:
    """Pass the candidate when on every set ``new >= old - tolerance`` for the primary metric.

    ``primary`` names one metric for every set (a rate of the evaluation where larger is better, so not
    ``ece``); None uses each set's own primary metric. A set where either model lacks the metric fails,
    saying so. ``comparison`` None or without a current model passes with "no current model".
    """
    if not (tolerance >= 0):
        raise ValueError(f"the tolerance must be a number >= 0, not {tolerance!r}")
    if primary == "ece":
        raise ValueError("the gate's metric must be one where larger is better; ECE is not")
    if comparison is None or not comparison.has_old:
        return no_current_model(tolerance)
    verdicts, reasons = [], []
    for name, result in comparison.sets.items():
        metric = primary or result.primary_metric
        old, new = result.value("old", metric), result.value("new", metric)
        if old is None or new is None:
            missing = " and ".join(side for side, v in (("the current model", old), ("the candidate", new)) if v is None)
            verdicts.append(SetVerdict(name, metric, old, new, None, False))
            reasons.append(f"{name}: {metric} was not measured for {missing}, so the set cannot pass.")
            continue
        delta = new - old
        passed = new >= old - tolerance - _EPS
        verdicts.append(SetVerdict(name, metric, old, new, delta, passed))
        if passed:
            how = "improved" if delta > 0 else "held" if delta == 0 else "dropped"
            reasons.append(f"{name}: {metric} {how} from {_fmt(old)} to {_fmt(new)} ({delta:+.4f}), within the "
                           f"tolerance of {tolerance:.4f}.")
        else:
            reasons.append(f"{name}: {metric} dropped from {_fmt(old)} to {_fmt(new)} ({delta:+.4f}), more than "
                           f"the tolerance of {tolerance:.4f}.")
    if not verdicts:
        return GateDecision(False, ["no set was compared, so nothing shows the candidate is as good"], tolerance)
    return GateDecision(all(v.passed for v in verdicts), reasons, tolerance, verdicts)


__all__ = ["GateDecision", "SetVerdict", "decide", "no_current_model"]
