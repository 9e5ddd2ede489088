"""From the transcript log to a review file: which turns, merged near-duplicates, and which of them to show.

1. :func:`select_turns` keeps the customer turns of one kind (``low-confidence``, ``fallback``, ``handoff`` or
   ``all``) written at or after ``since``. Turns written by an agent, the bot's own outgoing messages and the
   records of undelivered replies are never customer examples.
2. Each turn becomes a :class:`~training.review.items.ReviewItem` pre-filled with the model's guess.
3. :func:`merge_duplicates` folds exact duplicates (the same text once case, punctuation and spacing are
   ignored) and near-duplicates (token-set Jaccard >= 0.9 among items of the same predicted intent) into one
   item that counts them.
4. :func:`choose` picks up to ``limit`` items: by uncertainty spread over intents (the default), or at random
   with a seed (the baseline a measurement compares against).
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from training.review.items import MAX_SESSIONS, ReviewItem
from training.review.uncertainty import SCORES, spread_over_intents

if TYPE_CHECKING:
    from csbot.transcripts import TranscriptTurn

#: The kinds of turn :func:`select_turns` picks.
SELECT_MODES = ("low-confidence", "fallback", "handoff", "all")
#: How :func:`choose` picks the budget.
STRATEGIES = ("uncertainty", "random")
#: The confidence below which a turn counts as low-confidence when its parse records no ``threshold``.
DEFAULT_THRESHOLD = 0.5
#: Token-set Jaccard similarity at or above which two items of one predicted intent are merged.
NEAR_DUPLICATE_JACCARD = 0.9
#: Turn sources that are never a customer's message: an agent's reply, the bot's own outgoing messages, and
#: the record of a reply that could not be delivered.
NOT_CUSTOMER_SOURCES = frozenset({"agent", "sent", "undelivered"})
#: Sources of turns the bot could not answer from what it understood.
FALLBACK_SOURCES = frozenset({"fallback", "clarify"})
#: Reason codes of such turns (``bot.turns.ReasonCode``).
FALLBACK_CODES = frozenset({"below_threshold"})

_RELATIVE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> float:
    """A POSIX timestamp from ``7d``/``12h``/``30m``/``2w``/``45s`` (that long before ``now``) or an ISO date or
    date-time (``2024-05-01``, ``2024-05-01T09:30``, with or without an offset; without one: local time).

    Raises ``ValueError`` for anything else.
    """
    match = _RELATIVE.fullmatch(text)
    if match:
        amount, unit = float(match.group(1)), match.group(2).lower()
        return ((now or datetime.now().astimezone()) - timedelta(**{_UNITS[unit]: amount})).timestamp()
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise ValueError(f"{text!r} is neither an ISO date/time (2024-05-01, 2024-05-01T09:30) "
                         f"nor a duration (7d, 12h, 30m)") from None


# -- which turns ----------------------------------------------------------------------------------


def is_customer_turn(turn: TranscriptTurn) -> bool:
    """Whether the turn holds a customer's message: not an agent's, not the bot's own outgoing record."""
    return not turn.author and turn.source not in NOT_CUSTOMER_SOURCES and bool(turn.user_text.strip())


def handed_over(turn: TranscriptTurn) -> bool:
    """Whether this turn shows its conversation was (or is) with a person."""
    return (turn.source in ("handoff", "agent") or bool(turn.author) or turn.code == "handed_over"
            or turn.reply.get("handoff") is True)


def handed_over_sessions(turns: Iterable[TranscriptTurn]) -> set[str]:
    """The session ids of the conversations handed over to a person at some point."""
    return {turn.session_id for turn in turns if handed_over(turn)}


def _parse_threshold(parse: dict[str, Any]) -> float:
    value = parse.get("threshold")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return DEFAULT_THRESHOLD


def _confidence(parse: dict[str, Any]) -> float | None:
    intent = parse.get("intent")
    value = intent.get("confidence") if isinstance(intent, dict) else parse.get("confidence")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def is_low_confidence(turn: TranscriptTurn) -> bool:
    """Out of scope, or the intent's confidence below the model's threshold recorded in the parse
    (``parse.threshold``; :data:`DEFAULT_THRESHOLD` when none is recorded). A turn never parsed is not."""
    parse = turn.parse
    if not parse:
        return False
    if parse.get("out_of_scope") is True:
        return True
    confidence = _confidence(parse)
    return confidence is not None and confidence < _parse_threshold(parse)


def is_fallback(turn: TranscriptTurn) -> bool:
    """The bot fell back or asked to clarify, or its answer was below the retrieval threshold."""
    return turn.source in FALLBACK_SOURCES or turn.code in FALLBACK_CODES


def select_turns(turns: Iterable[TranscriptTurn], select: str = "low-confidence",
                 since: float | None = None) -> list[TranscriptTurn]:
    """The customer turns (see :func:`is_customer_turn`) of kind ``select`` at or after ``since``, in log order.

    ``low-confidence``: :func:`is_low_confidence`; ``fallback``: :func:`is_fallback`; ``handoff``: every
    customer turn of a conversation handed over to a person (before and after the hand-over); ``all``: every
    customer turn.
    """
    if select not in SELECT_MODES:
        raise ValueError(f"unknown selection {select!r} (one of {', '.join(SELECT_MODES)})")
    turns = [t for t in turns if since is None or t.timestamp >= since]
    turns = [t for t in turns if is_customer_turn(t) or select == "handoff"]
    if select == "handoff":
        sessions = handed_over_sessions(turns)
        turns = [t for t in turns if t.session_id in sessions and is_customer_turn(t)]
    elif select == "low-confidence":
        turns = [t for t in turns if is_low_confidence(t)]
    elif select == "fallback":
        turns = [t for t in turns if is_fallback(t)]
    return turns


def item_from_turn(turn: TranscriptTurn) -> ReviewItem:
    """A review item of a customer turn, pre-filled with the model's guess from its parse."""
    return ReviewItem.from_parse(turn.user_text, turn.parse, source="transcript", session_id=turn.session_id,
                                 turn=turn.turn, timestamp=turn.timestamp,
                                 model_version=str(turn.versions.get("nlu", "") or ""))


# -- merging --------------------------------------------------------------------------------------


def _copy(item: ReviewItem) -> ReviewItem:
    return replace(item, entities=list(item.entities), review=replace(item.review, sessions=list(item.review.sessions)))


def _absorb(into: ReviewItem, other: ReviewItem) -> None:
    into.review.count += other.review.count
    for session in other.review.sessions:
        if len(into.review.sessions) >= MAX_SESSIONS:
            break
        if session not in into.review.sessions:
            into.review.sessions.append(session)


def merge_duplicates(items: Iterable[ReviewItem], jaccard: float = NEAR_DUPLICATE_JACCARD) -> list[ReviewItem]:
    """The items with duplicates folded into the first of each group, ``review.count`` summing them.

    Exact duplicates: the same kind and the same normalised text (:func:`~training.review.items.normalise_text`).
    Near duplicates: examples of the same predicted intent whose token sets have Jaccard similarity >=
    ``jaccard``. Candidates are found by prefix filtering (tokens ordered rarest first: two sets that similar
    share a token among their first ``n - ceil(jaccard * n) + 1``), so each item is compared with the few that
    share a rare token, not with every other item. Items whose text normalises to nothing are dropped.
    Q&A candidates are merged only when exact: near-identical questions may have different answers.
    """
    exact: dict[tuple[str, str], ReviewItem] = {}
    for item in items:
        key = item.key
        if not key:
            continue
        found = exact.get((item.kind, key))
        if found is None:
            exact[(item.kind, key)] = _copy(item)
        else:
            _absorb(found, item)
    unique = list(exact.values())
    groups: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(unique):
        if item.kind == "example":
            groups[item.review.predicted_intent].append(index)
    folded: set[int] = set()
    for members in groups.values():
        for target, source in _near_pairs([unique[i] for i in members], jaccard):
            _absorb(unique[members[target]], unique[members[source]])
            folded.add(members[source])
    return [item for index, item in enumerate(unique) if index not in folded]


def _near_pairs(items: Sequence[ReviewItem], threshold: float) -> list[tuple[int, int]]:
    """``(representative, duplicate)`` index pairs: each item joins the first earlier representative it is at
    least ``threshold`` Jaccard-similar to, else becomes one itself."""
    token_sets = [frozenset(item.key.split()) for item in items]
    frequency = Counter(token for tokens in token_sets for token in tokens)
    index: dict[str, list[int]] = defaultdict(list)
    pairs: list[tuple[int, int]] = []
    for i, tokens in enumerate(token_sets):
        size = len(tokens)
        ordered = sorted(tokens, key=lambda t: (frequency[t], t))
        prefix = ordered[: size - math.ceil(threshold * size - 1e-9) + 1]
        candidates = sorted({j for token in prefix for j in index[token]})
        match = None
        for j in candidates:
            other = token_sets[j]
            if len(other) < threshold * size or size < threshold * len(other):
                continue
            common = len(tokens & other)
            if common / (size + len(other) - common) >= threshold:
                match = j
                break
        if match is None:
            for token in prefix:
                index[token].append(i)
        else:
            pairs.append((match, i))
    return pairs


# -- choosing -------------------------------------------------------------------------------------


def choose(items: Sequence[ReviewItem], strategy: str = "uncertainty", limit: int | None = None,
           score: str = "entropy", seed: int = 0) -> list[ReviewItem]:
    """Up to ``limit`` items (all when None): ``uncertainty`` (most uncertain by ``score``, round-robin over
    predicted intents: :func:`~training.review.uncertainty.spread_over_intents`) or ``random`` (a sample drawn
    with ``seed``, the same for the same items and seed)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r} (one of {', '.join(STRATEGIES)})")
    if score not in SCORES:
        raise ValueError(f"unknown uncertainty score {score!r} (one of {', '.join(SCORES)})")
    if strategy == "uncertainty":
        return spread_over_intents(items, limit, score)
    count = len(items) if limit is None else min(limit, len(items))
    return random.Random(seed).sample(list(items), count)


@dataclass
class ExportResult:
    """What :func:`export_review` did: the items chosen and how many turns and items each step saw."""

    items: list[ReviewItem]
    read: int = 0
    selected: int = 0
    candidates: int = 0
    merged: int = 0
    by_source: dict[str, int] = field(default_factory=dict)

    @property
    def written(self) -> int:
        return len(self.items)


def export_review(turns: Iterable[TranscriptTurn], *, select: str = "low-confidence", since: float | None = None,
                  strategy: str = "uncertainty", score: str = "entropy", limit: int | None = None, seed: int = 0,
                  extra: Iterable[ReviewItem] = ()) -> ExportResult:
    """Select, pre-fill, merge and choose: the whole export of a transcript log (plus ``extra`` items, such as
    raw helpdesk history's). With ``select`` ``handoff`` or ``all``, the handed-over conversations' question and
    agent answer pairs are added as Q&A candidates (:func:`training.review.helpdesk.handoff_qa_items`)."""
    from training.review.helpdesk import handoff_qa_items

    turns = list(turns)
    selected = select_turns(turns, select, since)
    items = [item_from_turn(turn) for turn in selected]
    if select in ("handoff", "all"):
        items.extend(handoff_qa_items([t for t in turns if since is None or t.timestamp >= since]))
    items.extend(extra)
    items = [item for item in items if item.key]
    merged = merge_duplicates(items)
    chosen = choose(merged, strategy, limit, score, seed)
    return ExportResult(items=chosen, read=len(turns), selected=len(selected), candidates=len(items),
                        merged=len(items) - len(merged), by_source=dict(Counter(i.review.source for i in chosen)))


__all__ = [
    "DEFAULT_THRESHOLD", "ExportResult", "SELECT_MODES", "STRATEGIES", "choose", "export_review", "handed_over_sessions",
    "is_customer_turn", "is_fallback", "is_low_confidence", "item_from_turn", "merge_duplicates", "parse_since",
    "select_turns",
]
