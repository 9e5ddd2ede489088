"""The two rules csbot chooses its thresholds by, on held-out in-scope data (no out-of-scope data needed).

- *Acceptance*: the score that a target share of in-scope scores reach (the out-of-scope neighbour detector,
  and the Q&A index's lower bound: what a right answer looks like).
- *Precision*: the lowest score at which the answers given are right a target share of the time (the
  intent model's confidence threshold, and the Q&A index's answers).
"""

from __future__ import annotations

import math

import numpy as np


def acceptance_threshold(scores: np.ndarray, accept_rate: float) -> float:
    """The highest of ``scores`` that at least ``accept_rate`` of them reach (only ``1 - accept_rate`` fall below)."""
    if not 0 < accept_rate <= 1:
        raise ValueError(f"accept_rate must be in (0, 1], got {accept_rate}")
    ordered = np.sort(np.asarray(scores, dtype=np.float64))
    if len(ordered) == 0:
        raise ValueError("no scores to choose a threshold from")
    below = math.floor(len(ordered) * (1.0 - accept_rate) + 1e-9)  # how many may fall below the threshold
    return float(ordered[min(below, len(ordered) - 1)])


#: Fewer scored examples than this: no precision threshold is chosen.
MIN_PRECISION_EXAMPLES = 50


def precision_threshold(scores: np.ndarray, correct: np.ndarray, target: float,
                        min_examples: int = MIN_PRECISION_EXAMPLES) -> float | None:
    """The lowest score at which the examples scoring at least that much are right ``target`` of the time.

    Answers are given from the most to the least sure; the threshold stops where going further would bring the
    precision of all answers given below ``target``. When even the surest answers miss it, the threshold lies
    just above the highest score (nothing is answered). None with fewer than ``min_examples`` scores.
    """
    scores = np.asarray(scores, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    keep = np.isfinite(scores)
    scores, correct = scores[keep], correct[keep]
    if scores.size < max(1, min_examples):
        return None
    order = np.argsort(-scores, kind="stable")
    ranked, right = scores[order], correct[order]
    precision = np.cumsum(right) / np.arange(1, len(right) + 1)
    # a cut may only fall between different scores: ties are answered alike
    last_of_tie = np.append(ranked[1:] != ranked[:-1], True)
    reach = np.flatnonzero((precision >= target - 1e-12) & last_of_tie)
    if not reach.size:
        return float(ranked[0]) + 1e-6 * max(1.0, abs(float(ranked[0])))  # clear of float32 scores rounding up
    return float(ranked[reach[-1]])


__all__ = ["MIN_PRECISION_EXAMPLES", "acceptance_threshold", "precision_threshold"]
