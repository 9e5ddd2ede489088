"""The promotion gate: every set's primary metric must stay within the tolerance of the current model's."""

from __future__ import annotations

import pytest

from training.compare import Comparison, SetComparison
from training.gate import GateDecision, decide


def result(name: str, primary: str, old: float | None, new: float | None, **extra_new) -> SetComparison:
    """A set whose primary metric went from ``old`` to ``new`` (intent accuracy, when not primary: 0.5 -> 0.9)."""
    old_metrics = {"intent_accuracy": 0.5, "primary_metric": primary, primary: old}
    new_metrics = {"intent_accuracy": 0.9, "primary_metric": primary, primary: new, **extra_new}
    return SetComparison(name=name, n=10, primary_metric=primary, old=old_metrics, new=new_metrics)


def comparison(*sets: SetComparison) -> Comparison:
    return Comparison(old_version="v1", new_version="v2", sets={s.name: s for s in sets})


def test_a_drop_within_the_tolerance_passes():
    gate = decide(comparison(result("dev", "intent_accuracy", 0.90, 0.885)), tolerance=0.02)
    assert gate.passed
    verdict = gate.sets[0]
    assert (verdict.set, verdict.metric, verdict.old, verdict.new) == ("dev", "intent_accuracy", 0.90, 0.885)
    assert verdict.delta == pytest.approx(-0.015) and gate.tolerance == 0.02
    assert gate.reasons == ["dev: intent_accuracy dropped from 0.9000 to 0.8850 (-0.0150), within the tolerance "
                            "of 0.0200."]


def test_a_drop_of_exactly_the_tolerance_passes():
    assert decide(comparison(result("dev", "intent_accuracy", 0.9, 0.88)), tolerance=0.02).passed


def test_a_drop_beyond_the_tolerance_fails_naming_the_set_and_numbers():
    gate = decide(comparison(result("dev", "oos_balanced", 0.80, 0.75)), tolerance=0.02)
    assert not gate.passed and not gate.sets[0].passed
    assert gate.reasons == ["dev: oos_balanced dropped from 0.8000 to 0.7500 (-0.0500), more than the tolerance "
                            "of 0.0200."]


def test_every_set_must_pass():
    gate = decide(comparison(result("dev", "intent_accuracy", 0.80, 0.95),
                             result("regression", "joint_score", 0.90, 0.70)), tolerance=0.05)
    assert not gate.passed
    assert [v.passed for v in gate.sets] == [True, False]
    assert gate.reasons[0].startswith("dev: intent_accuracy improved from 0.8000 to 0.9500")
    assert gate.reasons[1].startswith("regression: joint_score dropped from 0.9000 to 0.7000 (-0.2000)")
    both = decide(comparison(result("dev", "intent_accuracy", 0.80, 0.95),
                             result("regression", "joint_score", 0.90, 0.88)), tolerance=0.05)
    assert both.passed


def test_a_named_primary_metric_replaces_each_sets_own():
    cmp = comparison(result("dev", "oos_balanced", 0.80, 0.70))
    assert not decide(cmp, tolerance=0.0).passed
    gate = decide(cmp, tolerance=0.0, primary="intent_accuracy")  # 0.5 -> 0.9 on intent accuracy
    assert gate.passed and gate.sets[0].metric == "intent_accuracy"
    missing = decide(cmp, tolerance=0.0, primary="slot_f1")
    assert not missing.passed
    assert missing.reasons == ["dev: slot_f1 was not measured for the current model and the candidate, so the set "
                               "cannot pass."]
    with pytest.raises(ValueError, match="ECE"):
        decide(cmp, tolerance=0.0, primary="ece")


def test_no_current_model_passes_and_bad_tolerance_is_refused():
    first = Comparison(old_version=None, new_version="v1", sets={})
    for cmp in (first, None):
        gate = decide(cmp, tolerance=0.01)
        assert gate.passed and "no current model" in gate.reasons[0]
    with pytest.raises(ValueError, match="tolerance"):
        decide(comparison(result("dev", "intent_accuracy", 0.9, 0.9)), tolerance=-0.1)


def test_to_dict_round_trips():
    gate = decide(comparison(result("dev", "intent_accuracy", 0.9, 0.8)), tolerance=0.05)
    data = gate.to_dict()
    assert data["passed"] is False and data["tolerance"] == 0.05
    assert data["sets"][0] == {"set": "dev", "metric": "intent_accuracy", "old": 0.9, "new": 0.8,
                               "delta": pytest.approx(-0.1), "passed": False}
    assert GateDecision.from_dict(data) == gate
