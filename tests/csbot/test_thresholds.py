"""The two threshold rules (csbot/thresholds.py): acceptance of in-scope scores, and precision of the answers given."""

from __future__ import annotations

import numpy as np
import pytest

from csbot.thresholds import acceptance_threshold, precision_threshold


def test_the_acceptance_threshold_keeps_the_asked_share():
    scores = np.arange(100, dtype=float)  # 0 .. 99
    assert acceptance_threshold(scores, 0.97) == 3.0                # keeps 3 .. 99: 97 of 100
    assert acceptance_threshold(scores[::-1], 0.5) == 50.0
    assert acceptance_threshold(scores, 1.0) == 0.0
    shuffled = np.array([0.9, 0.1, 0.5, 0.7, 0.3, 0.8, 0.6, 0.4, 0.2, 0.95])
    assert acceptance_threshold(shuffled, 0.9) == 0.2  # only 0.1 (one in ten) below
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="accept_rate"):
            acceptance_threshold(scores, bad)
    with pytest.raises(ValueError, match="no scores"):
        acceptance_threshold(np.array([]), 0.9)


def test_the_precision_threshold_is_the_lowest_score_whose_answers_are_right_often_enough():
    scores = np.array([0.99, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    right = np.array([1, 1, 1, 1, 0, 1, 1, 0, 0, 1], dtype=bool)
    # answered from the top: precision 1, 1, 1, 1, .8, .83, .86, .75, .67, .7
    assert precision_threshold(scores, right, 0.8, min_examples=1) == 0.6
    assert precision_threshold(scores, right, 0.85, min_examples=1) == 0.6
    assert precision_threshold(scores, right, 0.9, min_examples=1) == 0.85
    assert precision_threshold(scores, right, 0.7, min_examples=1) == 0.3
    # the order of the input does not matter
    order = np.random.default_rng(3).permutation(len(scores))
    assert precision_threshold(scores[order], right[order], 0.9, min_examples=1) == 0.85


def test_tied_scores_are_answered_alike_and_an_unreachable_target_answers_nothing():
    scores = np.array([0.9, 0.8, 0.8, 0.5])
    right = np.array([True, True, False, True])
    # a cut between the two 0.8s is not possible: with both, precision 2/3
    assert precision_threshold(scores, right, 0.9, min_examples=1) == 0.9
    assert precision_threshold(scores, right, 0.75, min_examples=1) == 0.5
    never = precision_threshold(np.array([0.7, 0.6]), np.array([False, True]), 0.9, min_examples=1)
    assert never > 0.7  # above the highest score: nothing is answered
    assert (np.array([0.7, 0.6]) >= never).sum() == 0


def test_too_few_or_no_finite_scores_choose_nothing():
    assert precision_threshold(np.array([0.9] * 10), np.ones(10, dtype=bool), 0.9, min_examples=50) is None
    assert precision_threshold(np.array([np.nan, -np.inf]), np.array([True, True]), 0.9, min_examples=1) is None
    assert precision_threshold(np.arange(60.0), np.ones(60, dtype=bool), 0.9) == 0.0  # default minimum: 50
