"""Retrieval evaluation: coverage at a target precision (ties, nothing reaching it) and answer@1, recall@5,
MRR and the out-of-scope handling of ``evaluate_retrieval``.
"""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.evaluation import (
    coverage_at_precision,
    evaluate_retrieval,
    hit_key,
    report_markdown,
)
from retrieval.records import Hit, QARecord, SearchResult


def coverage(scores, correct, precision=0.95):
    return coverage_at_precision(np.array(scores, dtype=float), np.array(correct, dtype=bool), precision)


def test_coverage_stops_before_the_first_wrong_answer_that_breaks_precision():
    assert coverage([0.9, 0.8, 0.7, 0.6], [1, 1, 0, 1]) == (0.5, 0.8)


def test_coverage_does_not_depend_on_input_order():
    scores, correct = np.array([0.6, 0.9, 0.7, 0.8]), np.array([1, 1, 0, 1], dtype=bool)
    assert coverage_at_precision(scores, correct, 0.95) == (0.5, 0.8)


def test_coverage_only_cuts_between_different_scores():
    # answering 0.8 answers both tied queries, one of them wrong: the cut must stay above the tie
    assert coverage([0.9, 0.8, 0.8, 0.5], [1, 1, 0, 1]) == (0.25, 0.9)
    assert coverage([0.8, 0.8, 0.9, 0.5], [0, 1, 1, 1]) == (0.25, 0.9)
    assert coverage([0.9, 0.8, 0.8, 0.5], [1, 1, 1, 0]) == (0.75, 0.8)


def test_coverage_with_a_lower_precision_answers_more():
    assert coverage([4, 3, 2, 1], [1, 0, 1, 0], precision=0.5) == (1.0, 1.0)
    assert coverage([4, 3, 2, 1], [1, 0, 1, 0], precision=0.6) == (0.75, 2.0)


def test_coverage_when_no_threshold_reaches_the_precision():
    assert coverage([0.9, 0.8], [0, 1]) == (0.0, None)
    assert coverage([0.9, 0.9, 0.1], [1, 0, 1]) == (0.0, None)  # the tie at the top is already half wrong
    assert coverage([], []) == (0.0, None)


def result(query, *hits):
    """A search result whose hits are (key, score) pairs; a key starting with ``=`` is an answer text, no intent."""
    built = []
    for key, score in hits:
        if key.startswith("="):
            record = QARecord(f"id-{key}", "q", key[1:])
        else:
            record = QARecord(f"id-{key}", "q", f"answer for {key}", intent=key)
        built.append(Hit(record, score, score))
    return SearchResult(query, built, threshold=0.5, margin=0.0)


def test_hit_key_is_the_intent_else_the_answer():
    res = result("q", ("track", 0.9), ("=Refunds take 5 days.", 0.8))
    assert hit_key(res, 0) == "track" and hit_key(res, 1) == "Refunds take 5 days."


def test_answer_at_1_recall_at_5_and_mrr():
    results = [
        result("q1", ("a", 0.9), ("b", 0.5)),  # right at rank 1
        result("q2", ("a", 0.8), ("b", 0.7)),  # right at rank 2
        result("q3", ("a", 0.6), ("b", 0.5), ("x", 0.4), ("y", 0.3), ("z", 0.2), ("c", 0.1)),  # rank 6
        result("q4", ("a", 0.7)),  # never right
        result("q5"),  # no hits at all
    ]
    metrics = evaluate_retrieval(results, ["a", "b", "c", "c", "a"], {"a", "b", "c", "x", "y", "z"})
    assert (metrics["n"], metrics["n_in_scope"], metrics["n_oos"]) == (5, 5, 0)
    assert metrics["answer_at_1"] == pytest.approx(1 / 5)
    assert metrics["recall_at_5"] == pytest.approx(2 / 5)
    assert metrics["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 6) / 5)
    assert metrics["primary_metric"] == "answer_at_1"
    # only q1 is right at rank 1, and it has the best score
    assert (metrics["coverage_at_95_precision"], metrics["threshold_at_95_precision"]) == (0.2, 0.9)
    assert "oos_abstained_at_threshold" not in metrics


def test_answer_text_as_the_label():
    results = [result("q1", ("=Use the link.", 0.9)), result("q2", ("=Use the link.", 0.8), ("=Nine to five.", 0.7))]
    metrics = evaluate_retrieval(results, ["Use the link.", "Nine to five."], {"Use the link.", "Nine to five."})
    assert metrics["answer_at_1"] == 0.5 and metrics["mrr"] == 0.75


def test_out_of_scope_queries_count_in_coverage_not_in_answer_at_1():
    results = [
        result("in 1", ("a", 0.9)),
        result("in 2", ("b", 0.8)),
        result("oos high", ("oos", 0.85)),  # the index holds a record labelled oos, but oos is not a known intent
        result("oos low", ("a", 0.2)),
    ]
    metrics = evaluate_retrieval(results, ["a", "b", "oos", "oos"], {"a", "b"})
    assert (metrics["n_in_scope"], metrics["n_oos"]) == (2, 2)
    assert metrics["answer_at_1"] == 1.0 and metrics["recall_at_5"] == 1.0 and metrics["mrr"] == 1.0
    # the out-of-scope query at 0.85 counts as a wrong answer, so the threshold stays above it: 1 of 4 answered
    assert (metrics["coverage_at_95_precision"], metrics["threshold_at_95_precision"]) == (0.25, 0.9)
    assert metrics["oos_abstained_at_threshold"] == 1.0


def test_out_of_scope_answered_above_the_threshold_is_reported():
    results = [result("in", ("a", 0.9)), result("oos", ("a", 0.95)), result("oos 2", ("b", 0.1))]
    metrics = evaluate_retrieval(results, ["a", "oos", "oos"], {"a", "b"})
    assert metrics["coverage_at_95_precision"] == 0.0 and metrics["threshold_at_95_precision"] is None
    assert "oos_abstained_at_threshold" not in metrics


def test_no_in_scope_queries():
    metrics = evaluate_retrieval([result("x", ("a", 0.5))], ["oos"], {"a"})
    assert metrics["answer_at_1"] == metrics["recall_at_5"] == metrics["mrr"] == 0.0
    assert metrics["coverage_at_95_precision"] == 0.0


def test_results_and_gold_must_match_in_length():
    with pytest.raises(ValueError, match="2 results for 1 gold"):
        evaluate_retrieval([result("a"), result("b")], ["a"], {"a"})


def test_report_markdown_lists_every_metric():
    text = report_markdown({"answer_at_1": 0.123456, "n": 7, "threshold_at_95_precision": None}, "Eval")
    lines = text.splitlines()
    assert lines[0] == "# Eval" and "| answer_at_1 | 0.1235 |" in lines and "| n | 7 |" in lines
    assert "| threshold_at_95_precision | None |" in lines
