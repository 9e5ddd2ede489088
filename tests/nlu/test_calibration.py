"""Temperature scaling and the out-of-scope threshold on data whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from nlu.calibration import (
    Calibration,
    choose_oos_threshold,
    expected_calibration_error,
    fit_temperature,
    oos_scores,
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


def test_oos_scores_leave_out_the_oos_class():
    logits = np.array([[2.0, 9.0, 0.0], [1.0, -3.0, 1.0]])  # class 1 is out of scope
    prob = oos_scores(logits, "probability", oos_index=1)
    assert prob == pytest.approx([softmax(logits)[0, 0], softmax(logits)[1, 0]])
    energy = oos_scores(logits, "energy", oos_index=1)
    assert energy == pytest.approx([np.log(np.exp(2.0) + 1.0), np.log(2 * np.e)])
    # Energy keeps the logits' scale that softmax normalises away: a weak, flat response scores lower.
    flat, strong = np.array([[0.1, 0.0, 0.0]]), np.array([[8.1, 8.0, 8.0]])
    assert oos_scores(flat, "probability") == pytest.approx(oos_scores(strong, "probability"))
    assert oos_scores(flat, "energy")[0] < oos_scores(strong, "energy")[0] - 7
    big = oos_scores(np.array([[1000.0, 999.0]]), "energy")  # no overflow
    assert np.isfinite(big).all() and big[0] == pytest.approx(1000 + np.log1p(np.exp(-1)))
    with pytest.raises(ValueError, match="unknown out-of-scope score"):
        oos_scores(logits, "distance")


def test_oos_threshold_on_negative_scores_and_predicted_oos():
    # Energy-like scores below zero; one OOS example already predicted out of scope (-inf).
    in_conf = np.array([-1.0] * 95 + [-6.0] * 5)
    in_ok = np.array([True] * 95 + [False] * 5)
    oos_conf = np.array([-8.0, -7.0, -np.inf, -0.5])
    threshold, info = choose_oos_threshold(in_conf, in_ok, oos_conf, max_in_scope_cost=0.01)
    # -6 already flags 3 of 4 (-8, -7, -inf) at no cost; the lowest threshold with the best recall is kept.
    assert threshold == pytest.approx(-6.0)
    assert info["oos_recall"] == pytest.approx(0.75) and info["in_scope_accuracy"] == pytest.approx(0.95)
    nothing, none_info = choose_oos_threshold(np.array([-2.0, -1.0]), np.array([True, True]), np.array([-0.5]), 0.0)
    assert nothing <= -2.0 and none_info["oos_recall"] == 0.0  # no threshold flags anything for free
