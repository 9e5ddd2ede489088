"""Scoring retrieval on labelled queries: is the top hit's intent the query's, and when should it abstain?

A query whose intent no record in the index carries (CLINC150's ``oos``) is out of scope: the only right
move is to abstain. ``coverage_at_95_precision`` is the share of all queries answered when the threshold
on the top hit's score is the lowest that keeps 95% of the answers given right.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from retrieval.records import SearchResult

TARGET_PRECISION = 0.95


def hit_key(result: SearchResult, rank: int) -> str:
    """The label a hit answers with: its record's intent, else its answer text."""
    record = result.hits[rank].record
    return record.intent if record.intent is not None else record.answer


def coverage_at_precision(scores: np.ndarray, correct: np.ndarray, precision: float) -> tuple[float, float | None]:
    """(share answered, threshold) for the lowest threshold whose answers are at least ``precision`` right."""
    if len(scores) == 0:
        return 0.0, None
    order = np.argsort(-scores, kind="stable")
    sorted_scores, hits = scores[order], correct[order].astype(float)
    cumulative = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    # answering everything at or above a score: only cut between different scores
    last_of_tie = np.append(sorted_scores[1:] != sorted_scores[:-1], True)
    ok = np.flatnonzero((cumulative >= precision) & last_of_tie)
    if len(ok) == 0:
        return 0.0, None
    cut = int(ok[-1])
    return (cut + 1) / len(scores), float(sorted_scores[cut])


def evaluate_retrieval(
    results: Sequence[SearchResult], gold: Sequence[str], known_intents: set[str]
) -> dict[str, Any]:
    """``answer_at_1``, ``recall_at_5``, ``mrr`` over in-scope queries; abstention figures over all of them."""
    if len(results) != len(gold):
        raise ValueError(f"{len(results)} results for {len(gold)} gold labels")
    in_scope = np.array([g in known_intents for g in gold], dtype=bool)
    top_scores = np.array([r.hits[0].rank_score if r.hits else -np.inf for r in results], dtype=float)
    first_right = []
    for result, label in zip(results, gold, strict=True):
        rank = next((i for i in range(len(result.hits)) if hit_key(result, i) == label), None)
        first_right.append(rank)
    at_1 = np.array([r == 0 for r in first_right], dtype=bool)
    at_5 = np.array([r is not None and r < 5 for r in first_right], dtype=bool)
    reciprocal = np.array([0.0 if r is None else 1.0 / (r + 1) for r in first_right])
    n_in = int(in_scope.sum())
    metrics: dict[str, Any] = {
        "n": len(results),
        "n_in_scope": n_in,
        "n_oos": int((~in_scope).sum()),
        "answer_at_1": float(at_1[in_scope].mean()) if n_in else 0.0,
        "recall_at_5": float(at_5[in_scope].mean()) if n_in else 0.0,
        "mrr": float(reciprocal[in_scope].mean()) if n_in else 0.0,
        "primary_metric": "answer_at_1",
    }
    coverage, threshold = coverage_at_precision(top_scores, at_1 & in_scope, TARGET_PRECISION)
    metrics["coverage_at_95_precision"] = coverage
    metrics["threshold_at_95_precision"] = threshold
    if threshold is not None and metrics["n_oos"]:
        answered = top_scores >= threshold
        metrics["oos_abstained_at_threshold"] = float((~answered[~in_scope]).mean())
    return metrics


def report_markdown(metrics: dict[str, Any], title: str) -> str:
    """A small Markdown table of the metrics."""
    lines = [f"# {title}", "", "| metric | value |", "|---|---|"]
    for key, value in metrics.items():
        if isinstance(value, float):
            value = f"{value:.4f}"
        lines.append(f"| {key} | {value} |")
    return "\n".join(lines) + "\n"
