"""How unsure the model was about a turn, and picking a review budget by it without one intent taking it all.

Two scores come from the intent ranking a transcript turn records (``parse.intent_ranking``, the top few
intents with their confidences):

* **margin** = top-1 confidence - top-2 confidence (the top-2 is 0 when the ranking has one entry). Small
  means the model hesitated between two intents. It uses the confidences as recorded.
* **entropy** of the ranking, normalised to [0, 1] by dividing by ``log(k)`` for ``k`` entries. The log keeps
  only the top ``k`` (5) intents, not the whole distribution, so the ``k`` confidences are **renormalised to
  sum to 1** first: the entropy is that of the model's choice among the intents it ranked highest. The tail's
  mass is not known, so it is not guessed. Multi-label scores (independent sigmoids, summing to more than
  1) are renormalised the same way. High means unsure; a ranking of one entry has entropy 0.

:func:`uncertainty` turns either score into one number where higher means less sure (``1 - margin``, or the
entropy); an item no model looked at (raw helpdesk history) counts as maximally unsure (1.0).
:func:`spread_over_intents` then picks the most uncertain items, but round-robin over the predicted intents.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.review.items import ReviewItem

#: The uncertainty scores :func:`uncertainty` knows.
SCORES = ("margin", "entropy")


def ranking_confidences(parse: Mapping[str, Any]) -> list[float]:
    """The confidences of a parse result's ``intent_ranking``, highest first; the top intent's alone when the
    ranking is missing. Entries that are not numbers are ignored; negative ones count as 0."""
    scores: list[float] = []
    ranking = parse.get("intent_ranking")
    if isinstance(ranking, list):
        for entry in ranking:
            value = entry.get("confidence") if isinstance(entry, Mapping) else None
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                scores.append(max(float(value), 0.0))
    if not scores:
        intent = parse.get("intent")
        value = intent.get("confidence") if isinstance(intent, Mapping) else parse.get("confidence")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            scores.append(max(float(value), 0.0))
    return sorted(scores, reverse=True)


def margin(confidences: Sequence[float]) -> float:
    """Top-1 minus top-2 confidence (top-2 is 0 when there is only one); an empty ranking raises ``ValueError``."""
    if not confidences:
        raise ValueError("no confidences to take a margin of")
    ordered = sorted(confidences, reverse=True)
    second = ordered[1] if len(ordered) > 1 else 0.0
    return max(ordered[0] - second, 0.0)


def entropy(confidences: Sequence[float]) -> float:
    """Shannon entropy of the confidences renormalised to sum to 1, divided by ``log(k)``: in [0, 1].

    0 for a single entry, or when all the mass is on one; 1 when the ``k`` entries are equal. When they sum
    to 0 (nothing known) the distribution is taken as uniform (1.0).
    """
    values = [max(float(c), 0.0) for c in confidences]
    k = len(values)
    if k <= 1:
        return 0.0
    total = sum(values)
    if total <= 0.0:
        return 1.0
    h = -sum((v / total) * math.log(v / total) for v in values if v > 0.0)
    return min(max(h / math.log(k), 0.0), 1.0)


def uncertainty(item: ReviewItem, score: str = "margin") -> float:
    """How unsure the model was about ``item``, higher is less sure: ``1 - margin`` or the entropy.

    An item without the score (no model guess) counts as 1.0, the most unsure.
    """
    if score not in SCORES:
        raise ValueError(f"unknown uncertainty score {score!r} (one of {', '.join(SCORES)})")
    if score == "margin":
        value = item.review.margin
        return 1.0 if value is None else 1.0 - float(value)
    value = item.review.entropy
    return 1.0 if value is None else float(value)


def rank_by_uncertainty(items: Sequence[ReviewItem], score: str = "margin") -> list[ReviewItem]:
    """The items, most uncertain first; ties go to the item seen more often, then by id (deterministic)."""
    return sorted(items, key=lambda it: (-uncertainty(it, score), -it.review.count, it.review.id))


def spread_over_intents(items: Sequence[ReviewItem], limit: int | None, score: str = "margin") -> list[ReviewItem]:
    """Up to ``limit`` items (all when None), most uncertain first, round-robin over predicted intents.

    Each predicted intent (``""`` for items without a guess) is a queue of its items, most uncertain first.
    Rounds take the head of every queue that still has items, queues in the order of their heads'
    uncertainty, until the limit is reached: one confusing intent with many low-margin turns gets its
    share, then the rest only once the other intents run out.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")
    queues: dict[str, list[ReviewItem]] = {}
    for item in rank_by_uncertainty(items, score):
        queues.setdefault(item.review.predicted_intent, []).append(item)
    budget = len(items) if limit is None else min(limit, len(items))
    chosen: list[ReviewItem] = []
    depth = 0
    while len(chosen) < budget:
        layer = [queue[depth] for queue in queues.values() if depth < len(queue)]
        if not layer:
            break
        for item in rank_by_uncertainty(layer, score):
            if len(chosen) >= budget:
                break
            chosen.append(item)
        depth += 1
    return chosen


__all__ = ["SCORES", "entropy", "margin", "rank_by_uncertainty", "ranking_confidences", "spread_over_intents",
           "uncertainty"]
