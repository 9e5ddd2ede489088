"""Whole-bot evaluation: labelled messages through the real dialogue manager, each outcome classified.

:func:`run_bot` sends every :class:`LabelledMessage` to the bot (the CLI: the dialogue manager) in a fresh session
(a unique session id per message), at most ``concurrency`` at a time so the micro-batchers batch the model
calls, and :func:`classify` turns each reply into a :class:`MessageOutcome`:

- ``right``: a template of the gold intent (the intent completed, or else the one parsed), the first
  question of the gold intent's form (``ask_slot``: the bot started the right request), or a retrieved
  record labelled with the gold intent;
- ``wrong``: any other answer; every answer to an out-of-scope message is wrong;
- ``unattributed``: an in-scope message answered from a record with no intent (neither right nor wrong);
- ``clarified``, ``fell_back`` (fallback, error, silent) and ``handed_over``: no answer given.

:func:`summarise` computes the metrics (:class:`BotReport`); :func:`threshold_curve` recomputes containment
and precision offline, from the recorded confidences and scores, as if the intent threshold (or the
retrieval threshold) were each value of a grid. The running bot never imports this module: the CLI does.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from csbot.errors import DataError
from training.bot_messages import LabelledMessage, load_messages

logger = logging.getLogger(__name__)

Outcome = Literal["right", "wrong", "unattributed", "clarified", "fell_back", "handed_over"]
#: Reply sources that give the customer an answer.
ANSWER_SOURCES = ("template", "ask_slot", "retrieve")
#: The label out-of-scope messages are shown under in tables.
OUT_OF_SCOPE = "(out of scope)"
#: The intent thresholds the curve is drawn over (the config's own is added).
DEFAULT_GRID = tuple(round(i / 20, 2) for i in range(21))
#: Reason codes (``bot.turns.ReasonCode`` values; ``training`` does not import ``bot``) the curves read.
LOW_CONFIDENCE = "low_confidence"
RETRIEVAL_BELOW = ("no_close_answer", "below_threshold")


class ReplyLike(Protocol):
    """What is read of a :class:`bot.messages.Reply` (``training`` does not import ``bot``)."""

    source: str
    handoff: bool
    details: Any


@dataclass
class MessageOutcome:
    """What the bot did with one message, and the raw numbers the curve is recomputed from."""

    text: str
    gold: str | None
    source: str
    outcome: Outcome
    #: the intent the answer is attributed to (the template's, the form's, the record's); None when none
    answered: str | None = None
    #: the intent the model parsed, its confidence, the out-of-scope flag and score (when the turn has them)
    intent: str | None = None
    confidence: float | None = None
    out_of_scope: bool | None = None
    oos_score: float | None = None
    #: the top retrieval hit's score and the intent of its record, when the turn searched
    retrieval_score: float | None = None
    retrieval_intent: str | None = None
    #: the turn's reason codes, in order
    codes: list[str] = field(default_factory=list)
    latency_ms: float | None = None

    @property
    def in_scope(self) -> bool:
        return self.gold is not None


def _attributed(gold: str | None, answered: str | None) -> Outcome:
    return "right" if gold is not None and answered == gold else "wrong"


def classify(gold: str | None, reply: ReplyLike, text: str = "") -> MessageOutcome:
    """The outcome of ``reply`` to a message whose gold intent is ``gold`` (None: out of scope)."""
    details = reply.details
    top = details.hits[0] if details.hits else None
    score = None
    if top is not None:
        score = top.rank_score if top.rank_score is not None else top.score
    record = MessageOutcome(
        text=text, gold=gold, source=reply.source, outcome="fell_back", intent=details.intent,
        confidence=details.confidence, out_of_scope=details.out_of_scope,
        oos_score=getattr(details, "oos_score", None), retrieval_score=score,
        retrieval_intent=top.intent if top is not None else None,
        codes=[str(code) for code in details.decision.codes], latency_ms=details.timings.total_ms,
    )
    source = reply.source
    if source in ("template", "ask_slot"):
        record.answered = details.completed or details.intent
        record.outcome = _attributed(gold, record.answered)
    elif source == "retrieve":
        record.answered = record.retrieval_intent
        if record.answered is None and gold is not None:
            record.outcome = "unattributed"
        else:
            record.outcome = _attributed(gold, record.answered)
    elif source == "clarify":
        record.outcome = "clarified"
    elif source == "handoff" or reply.handoff:
        record.outcome = "handed_over"
    else:  # fallback, error, silent
        record.outcome = "fell_back"
    return record


async def run_bot(ask: Callable[[str, str], Awaitable[ReplyLike]], messages: Sequence[LabelledMessage],
                  concurrency: int = 32, on_done: Callable[[int], object] | None = None) -> list[MessageOutcome]:
    """``ask(session_id, text)`` for each message, each in a new session (a unique id), ``concurrency`` at a
    time; the outcomes in the order of ``messages``. The CLI's ``ask`` is the dialogue manager's ``handle``."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    run = uuid.uuid4().hex[:12]
    outcomes: list[MessageOutcome | None] = [None] * len(messages)
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int, message: LabelledMessage) -> None:
        async with gate:
            reply = await ask(f"eval-{run}-{index}", message.text)
        outcomes[index] = classify(message.intent, reply, message.text)
        if on_done is not None:
            on_done(1)

    await asyncio.gather(*(one(i, m) for i, m in enumerate(messages)))
    return [o for o in outcomes if o is not None]


# -- the metrics -----------------------------------------------------------------------------------------------


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def _percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (``share`` in [0, 1]) of ``values``; None when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = min(max(1, math.ceil(share * len(ordered))), len(ordered))
    return ordered[rank - 1]


@dataclass
class Shares:
    """How the messages of one group ended: counts and shares of the whole group."""

    n: int = 0
    answered: int = 0
    clarified: int = 0
    fell_back: int = 0
    handed_over: int = 0
    clarify_share: float | None = None
    fallback_share: float | None = None
    handoff_share: float | None = None


def _shares(outcomes: Sequence[MessageOutcome]) -> Shares:
    counts = Counter(o.outcome for o in outcomes)
    n = len(outcomes)
    answered = counts["right"] + counts["wrong"] + counts["unattributed"]
    return Shares(n, answered, counts["clarified"], counts["fell_back"], counts["handed_over"],
                  _rate(counts["clarified"], n), _rate(counts["fell_back"], n), _rate(counts["handed_over"], n))


@dataclass
class IntentRow:
    """One gold intent's messages (``n`` onward), and the answers given as that intent (``answered_as``)."""

    intent: str
    n: int
    right: int
    wrong: int
    unattributed: int
    clarified: int
    fell_back: int
    handed_over: int
    containment: float | None
    #: answers given as this intent (to any message), and the share of them that were right
    answered_as: int
    precision: float | None


@dataclass
class WrongAnswer:
    """A kind of wrong answer: the gold intent (``(out of scope)``), the intent answered, how often, an example."""

    gold: str
    answered: str
    count: int
    example: str


@dataclass
class CurvePoint:
    """Containment and precision recomputed as if a threshold were ``threshold``."""

    threshold: float
    containment: float | None
    precision: float | None
    answered: int
    oos_abstain_rate: float | None


@dataclass
class Latency:
    """The turn's total time, in milliseconds."""

    n: int
    p50_ms: float | None
    p99_ms: float | None
    mean_ms: float | None


@dataclass
class BotReport:
    """Everything ``report.json`` holds; ``primary_metric`` names the key to compare bots on."""

    n: int
    n_in_scope: int
    n_out_of_scope: int
    right: int
    wrong: int
    unattributed: int
    containment: float | None
    precision: float | None
    oos_abstain_rate: float | None
    clarify_share: float | None
    fallback_share: float | None
    handoff_share: float | None
    ask_slot_right: int
    shares: dict[str, Shares]
    per_intent: list[IntentRow]
    wrong_answers: list[WrongAnswer]
    latency: Latency
    intent_threshold: float | None
    retrieval_threshold: float | None
    intent_curve: list[CurvePoint]
    retrieval_curve: list[CurvePoint]
    config: str = ""
    data: list[str] = field(default_factory=list)
    out_of_scope_data: list[str] = field(default_factory=list)
    primary_metric: str = "containment"


def _point(outcomes: Sequence[MessageOutcome], threshold: float) -> CurvePoint:
    counts = Counter(o.outcome for o in outcomes)
    in_scope = sum(o.in_scope for o in outcomes)
    oos = [o for o in outcomes if not o.in_scope]
    abstained = sum(o.outcome not in ("right", "wrong", "unattributed") for o in oos)
    answered = counts["right"] + counts["wrong"] + counts["unattributed"]
    return CurvePoint(threshold, _rate(counts["right"], in_scope), _rate(counts["right"], counts["right"] + counts["wrong"]),
                      answered, _rate(abstained, len(oos)))


def at_intent_threshold(outcome: MessageOutcome, t: float) -> MessageOutcome:
    """The outcome as if every intent threshold were ``t`` (an approximation, see docs/containment.md).

    An answer from an intent (template or form) whose confidence is below ``t`` becomes no answer (counted as
    fell back: what the search it would go to instead would have found is unknown); a turn sent to the search
    for low confidence whose confidence reaches ``t`` is answered as its parsed intent. Others are unchanged.
    """
    if outcome.confidence is None:
        return outcome
    if outcome.source in ("template", "ask_slot") and outcome.confidence < t:
        return replace(outcome, outcome="fell_back", answered=None)
    if LOW_CONFIDENCE in outcome.codes and outcome.confidence >= t and outcome.intent and not outcome.out_of_scope:
        return replace(outcome, outcome=_attributed(outcome.gold, outcome.intent), answered=outcome.intent)
    return outcome


def at_retrieval_threshold(outcome: MessageOutcome, r: float) -> MessageOutcome:
    """The outcome as if the retrieval threshold were ``r``: a retrieved answer whose top score is below it is
    no answer; a search that found nothing close enough answers its top hit when that reaches ``r`` (ties
    that would be clarified are not modelled)."""
    if outcome.retrieval_score is None:
        return outcome
    if outcome.source == "retrieve" and outcome.retrieval_score < r:
        return replace(outcome, outcome="fell_back", answered=None)
    if outcome.codes and outcome.codes[-1] in RETRIEVAL_BELOW and outcome.retrieval_score >= r:
        answered = outcome.retrieval_intent
        verdict: Outcome = "unattributed" if answered is None and outcome.in_scope else _attributed(outcome.gold, answered)
        return replace(outcome, outcome=verdict, answered=answered)
    return outcome


def threshold_curve(outcomes: Sequence[MessageOutcome], grid: Iterable[float],
                    move: Callable[[MessageOutcome, float], MessageOutcome] = at_intent_threshold) -> list[CurvePoint]:
    """One :class:`CurvePoint` per threshold of ``grid`` (sorted), each outcome moved by ``move``."""
    return [_point([move(o, t) for o in outcomes], t) for t in sorted(set(grid))]


def _per_intent(outcomes: Sequence[MessageOutcome]) -> list[IntentRow]:
    gold_counts: dict[str, Counter[str]] = {}
    answered_as: Counter[str] = Counter()
    right_as: Counter[str] = Counter()
    for o in outcomes:
        gold_counts.setdefault(o.gold or OUT_OF_SCOPE, Counter())[o.outcome] += 1
        if o.outcome in ("right", "wrong") and o.answered:
            answered_as[o.answered] += 1
            right_as[o.answered] += o.outcome == "right"
    rows = []
    for name in sorted(set(gold_counts) | set(answered_as)):
        c = gold_counts.get(name, Counter())
        n = sum(c.values())
        rows.append(IntentRow(name, n, c["right"], c["wrong"], c["unattributed"], c["clarified"], c["fell_back"],
                              c["handed_over"], _rate(c["right"], n) if name != OUT_OF_SCOPE else None,
                              answered_as[name], _rate(right_as[name], answered_as[name])))
    return rows


def _wrong_answers(outcomes: Sequence[MessageOutcome], top: int) -> list[WrongAnswer]:
    counts: Counter[tuple[str, str]] = Counter()
    examples: dict[tuple[str, str], str] = {}
    for o in outcomes:
        if o.outcome == "wrong":
            key = (o.gold or OUT_OF_SCOPE, o.answered or "(unattributed record)")
            counts[key] += 1
            examples.setdefault(key, o.text)
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [WrongAnswer(gold, answered, count, examples[(gold, answered)]) for (gold, answered), count in ordered]


def summarise(outcomes: Sequence[MessageOutcome], intent_threshold: float | None = None,
              retrieval_threshold: float | None = None, grid: Iterable[float] = DEFAULT_GRID,
              top_wrong: int = 20) -> BotReport:
    """The metrics of a run (see the module docstring); the curves over ``grid`` plus the config's thresholds."""
    if not outcomes:
        raise DataError("no messages were evaluated")
    counts = Counter(o.outcome for o in outcomes)
    in_scope = [o for o in outcomes if o.in_scope]
    oos = [o for o in outcomes if not o.in_scope]
    point = _point(outcomes, 0.0)
    everyone = _shares(outcomes)
    latencies = [o.latency_ms for o in outcomes if o.latency_ms is not None]
    grid = list(grid)
    scores = [o.retrieval_score for o in outcomes if o.retrieval_score is not None]
    r_grid = grid + ([retrieval_threshold] if retrieval_threshold is not None else [])
    return BotReport(
        n=len(outcomes), n_in_scope=len(in_scope), n_out_of_scope=len(oos),
        right=counts["right"], wrong=counts["wrong"], unattributed=counts["unattributed"],
        containment=point.containment, precision=point.precision, oos_abstain_rate=point.oos_abstain_rate,
        clarify_share=everyone.clarify_share, fallback_share=everyone.fallback_share,
        handoff_share=everyone.handoff_share,
        ask_slot_right=sum(o.outcome == "right" and o.source == "ask_slot" for o in outcomes),
        shares={"all": everyone, "in_scope": _shares(in_scope), "out_of_scope": _shares(oos)},
        per_intent=_per_intent(outcomes), wrong_answers=_wrong_answers(outcomes, top_wrong),
        latency=Latency(len(latencies), _percentile(latencies, 0.5), _percentile(latencies, 0.99),
                        sum(latencies) / len(latencies) if latencies else None),
        intent_threshold=intent_threshold, retrieval_threshold=retrieval_threshold,
        intent_curve=threshold_curve(outcomes, grid + ([intent_threshold] if intent_threshold is not None else [])),
        retrieval_curve=threshold_curve(outcomes, r_grid, at_retrieval_threshold) if scores else [],
    )


__all__ = [
    "BotReport", "CurvePoint", "IntentRow", "LabelledMessage", "Latency", "MessageOutcome", "Shares", "WrongAnswer",
    "at_intent_threshold", "at_retrieval_threshold", "classify", "load_messages", "run_bot", "summarise",
    "threshold_curve",
]
