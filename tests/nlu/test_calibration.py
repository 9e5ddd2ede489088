"""Temperature scaling and the out-of-scope threshold on data whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from nlu.calibration import (
    Calibration,
    choose_oos_threshold,
    expected_calibration_error,
    fit_temperature,
    sigmoid,
    softmax,
)


def sample_calibrated(n=4000, classes=5, seed=0):
    """Logits whose softmax is exactly the probability the label is drawn from."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, size=(n, classes))
    probs = softmax(logits)
    labels = np.array([rng.choice(classes, p=p) for p in probs])
    return logits, labels


def test_fit_recovers_the_temperature_of_overconfident_logits():
    logits, labels = sample_calibrated()
    assert fit_temperature(logits, labels) == pytest.approx(1.0, abs=0.1)
    assert fit_temperature(logits * 3.0, labels) == pytest.approx(3.0, rel=0.1)


def test_scaling_lowers_the_calibration_error():
    logits, labels = sample_calibrated()
    over = logits * 3.0
    t = fit_temperature(over, labels)
    before = expected_calibration_error(softmax(over).max(1), softmax(over).argmax(1) == labels)
    after = expected_calibration_error(softmax(over, t).max(1), softmax(over, t).argmax(1) == labels)
    assert after < before / 2
    assert np.array_equal(softmax(over, t).argmax(1), softmax(over).argmax(1))  # ranking unchanged


def test_multi_label_temperature():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, size=(3000, 4))
    targets = (rng.random((3000, 4)) < sigmoid(logits)).astype(float)
    assert fit_temperature(logits * 2.5, targets, multi_label=True) == pytest.approx(2.5, rel=0.12)


def test_ece_of_known_bins():
    conf = np.array([0.9, 0.9, 0.9, 0.9, 0.3, 0.3])
    correct = np.array([1, 1, 1, 0, 0, 0])
    # bin 0.9: |0.9 - 0.75| * 4/6 ; bin 0.3: |0.3 - 0| * 2/6
    assert expected_calibration_error(conf, correct) == pytest.approx(0.15 * 4 / 6 + 0.3 * 2 / 6)


def test_oos_threshold_respects_the_in_scope_budget():
    in_conf = np.array([0.95] * 90 + [0.5] * 5 + [0.2] * 5)
    in_ok = np.array([True] * 90 + [True] * 5 + [False] * 5)
    oos_conf = np.array([0.1] * 6 + [0.4] * 3 + [0.9])
    threshold, info = choose_oos_threshold(in_conf, in_ok, oos_conf, max_in_scope_cost=0.01)
    # Flagging everything below 0.5 keeps every correct in-scope example: recall 9/10 at no cost;
    # going above 0.5 would lose 5 correct ones (0.05 > 0.01).
    assert threshold == pytest.approx(0.5)
    assert info["oos_recall"] == pytest.approx(0.9)
    assert info["in_scope_accuracy"] == pytest.approx(0.95)
    loose, loose_info = choose_oos_threshold(in_conf, in_ok, oos_conf, max_in_scope_cost=0.06)
    assert loose == pytest.approx(0.95) and loose_info["oos_recall"] == pytest.approx(1.0)


def test_calibration_round_trip_ignores_unknown_keys():
    cal = Calibration(1.7, 0.42, "dev", 0.1, 0.02)
    assert Calibration.from_dict({**cal.to_dict(), "extra": 1}) == cal
