"""Margin and entropy from a ranking, and a review budget spread over the predicted intents."""

from __future__ import annotations

import math

import pytest
from review_helpers import item

from training.review.uncertainty import (
    entropy,
    margin,
    rank_by_uncertainty,
    ranking_confidences,
    spread_over_intents,
    uncertainty,
)


def test_margin_is_top1_minus_top2():
    assert margin([0.3, 0.6, 0.1]) == pytest.approx(0.3)
    assert margin([0.8]) == pytest.approx(0.8)  # no runner-up: top-2 counts as 0
    with pytest.raises(ValueError):
        margin([])


def test_entropy_renormalises_the_top_k():
    assert entropy([0.9]) == 0.0
    assert entropy([0.5, 0.5]) == pytest.approx(1.0)
    # the top-2 of a wider distribution, equal: renormalised they are uniform, so as unsure as can be
    assert entropy([0.2, 0.2]) == pytest.approx(1.0)
    p = [0.6 / 0.9, 0.3 / 0.9]
    expected = -sum(x * math.log(x) for x in p) / math.log(2)
    assert entropy([0.6, 0.3]) == pytest.approx(expected)
    assert entropy([0.9, 0.05, 0.05]) < entropy([0.4, 0.35, 0.25])
    assert entropy([0.0, 0.0]) == 1.0


def test_ranking_confidences_fall_back_to_the_top_intent():
    assert ranking_confidences({"intent": {"name": "a", "confidence": 0.7}}) == [0.7]
    ranked = {"intent": {"name": "a", "confidence": 0.7},
              "intent_ranking": [{"name": "b", "confidence": 0.2}, {"name": "a", "confidence": 0.7}, {"name": "c"}]}
    assert ranking_confidences(ranked) == [0.7, 0.2]


def test_uncertainty_orders_by_the_chosen_score():
    # margin says "x" is less sure, entropy says "y" is
    x = item("x text", "a", margin=0.05, entropy=0.3)
    y = item("y text", "b", margin=0.2, entropy=0.9)
    assert [i.text for i in rank_by_uncertainty([y, x], "margin")] == ["x text", "y text"]
    assert [i.text for i in rank_by_uncertainty([x, y], "entropy")] == ["y text", "x text"]
    assert uncertainty(item("no guess", "", margin=None)) == 1.0
    with pytest.raises(ValueError):
        uncertainty(x, "variance")


def test_a_confusing_intent_does_not_take_the_whole_budget():
    confusing = [item(f"confusing {n}", "billing", margin=0.01 + n / 1000) for n in range(30)]
    others = [item(f"track {n}", "track_order", margin=0.3 + n / 100) for n in range(3)]
    others += [item(f"refund {n}", "refund", margin=0.4 + n / 100) for n in range(3)]
    items = confusing + others
    # plain ranking would give the confusing intent everything
    assert {i.review.predicted_intent for i in rank_by_uncertainty(items)[:6]} == {"billing"}
    chosen = spread_over_intents(items, 6)
    intents = [i.review.predicted_intent for i in chosen]
    assert intents.count("billing") == 2 and intents.count("track_order") == 2 and intents.count("refund") == 2
    # within an intent the most uncertain come first, and the first round starts with the least sure head
    assert chosen[0].text == "confusing 0"
    assert [i.text for i in chosen if i.review.predicted_intent == "billing"] == ["confusing 0", "confusing 1"]


def test_spread_fills_the_budget_once_other_intents_run_out():
    items = [item(f"c {n}", "billing", margin=0.01) for n in range(10)] + [item("t", "track", margin=0.5)]
    chosen = spread_over_intents(items, 5)
    assert len(chosen) == 5
    assert [i.review.predicted_intent for i in chosen].count("billing") == 4
    assert len(spread_over_intents(items, None)) == 11
    assert spread_over_intents(items, 0) == []
