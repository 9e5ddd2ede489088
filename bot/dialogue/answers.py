"""Answers from past conversations: search the Q&A index, give the closest answer when it clears the
threshold, ask which question was meant when several are about as close, and read the customer's pick.

Hits are "the same answer" when both records carry an intent and it is the same one (different answer texts
of one intent are one answer: the top hit is given), and otherwise when their answer texts are equal; only
near-tied hits that are different answers lead to a clarifying question. The threshold applied (the domain's
``thresholds.retrieval`` when set, else the index's own) is written into the turn's decision note.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

from bot.dialogue.handoff import Escalation
from bot.dialogue.turn import Turn
from bot.domain.schema import Domain
from bot.messages import Button
from bot.sessions.state import Choice, PendingClarification
from bot.turns import HitSummary, ReasonCode
from bot.understanding import Retriever
from retrieval.records import Hit, SearchResult
from retrieval.thresholds import answer_key as same_answer_text

log = logging.getLogger(__name__)

#: At most this many choices are offered when an answer is ambiguous.
MAX_CHOICES = 3


class Answers:
    """Retrieval and clarification for the dialogue manager; ``retriever`` may be None (no Q&A index), and
    then a search falls back, as it does when the search fails or takes longer than ``timeout_seconds``."""

    def __init__(self, domain: Domain, retriever: Retriever | None, escalation: Escalation,
                 timeout_seconds: float = 30.0) -> None:
        self.domain = domain
        self.retriever = retriever
        self.escalation = escalation
        self.timeout_seconds = timeout_seconds

    async def retrieve(self, turn: Turn, text: str, retriever: Retriever | None = None) -> None:
        """Answer ``text`` from ``retriever`` (the turn's; this helper's own when not given), offer choices, or
        fall back (the slot asked again during a form)."""
        state = turn.state
        retriever = retriever if retriever is not None else self.retriever
        if retriever is None:
            await self.escalation.fail(turn, ReasonCode.NO_INDEX, "no Q&A index")
            return
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_seconds):
                result = await retriever.search(text)
        except Exception as exc:  # noqa: BLE001 - this turn falls back, the conversation goes on
            cause = "timed out" if isinstance(exc, TimeoutError) else f"{exc.__class__.__name__}: {exc}"
            log.error("session %r: the Q&A search failed: %s", state.session_id, cause)
            await self.escalation.fail(turn, ReasonCode.RETRIEVAL_FAILED, f"the Q&A search failed ({cause})")
            return
        finally:
            turn.retrieval_ms = round((time.perf_counter() - started) * 1000, 2)
        turn.hits = [HitSummary(h.record.id, h.record.question, round(h.score, 4), round(h.rank_score, 4), h.record.intent)
                     for h in result.hits]
        thresholds = self.domain.thresholds
        threshold = thresholds.retrieval if thresholds.retrieval is not None else result.threshold
        margin = thresholds.ambiguity_margin if thresholds.ambiguity_margin is not None else result.margin
        result = dataclasses.replace(result, threshold=threshold, margin=margin)
        top = result.top
        origin = "domain" if thresholds.retrieval is not None else "index"
        scored = f"top score {top.rank_score:.4f}" if top is not None else "no hits"
        self._note(turn, f"{scored}, threshold {threshold:.4f} ({origin}), margin {margin:.4f}")
        if top is None or top.rank_score < threshold - margin:
            await self.escalation.fail(turn, ReasonCode.NO_CLOSE_ANSWER, "no past answer close enough")
            return
        if ambiguous(result, self.domain):
            choices: list[Choice] = []
            kept: list[Hit] = []
            for hit in result.hits:
                if hit.rank_score < threshold - margin or any(same_answer(hit, k, self.domain) for k in kept):
                    continue
                kept.append(hit)
                choices.append(Choice(hit.record.question, hit.record.question, hit.record.answer, hit.record.id))
                if len(choices) == MAX_CHOICES:
                    break
            if len(choices) > 1:
                state.pending = PendingClarification(choices)
                message = turn.say("clarify")
                message.buttons = [Button(c.question, c.payload) for c in choices]
                turn.source = "clarify"
                turn.decision.because(ReasonCode.AMBIGUOUS)
                return
        if top.rank_score < threshold:  # ambiguous with one answer, or exactly at threshold - margin
            await self.escalation.fail(turn, ReasonCode.BELOW_THRESHOLD, "the closest past answer is below the threshold")
            return
        state.consecutive_failures = 0
        turn.say("retrieved", {"answer": top.record.answer, "question": top.record.question,
                               "source": top.record.source or top.record.id})
        turn.source = "retrieve"
        if state.requested_slot:
            turn.ask(state.requested_slot)

    @staticmethod
    def _note(turn: Turn, text: str) -> None:
        """Add the retrieval figures to the decision's note."""
        note = turn.decision.note
        turn.decision.note = f"{note} [{text}]" if note else text

    def pick_choice(self, turn: Turn, pending: PendingClarification, text: str) -> bool:
        """Answer with the choice ``text`` picks (its button's payload, the question typed, or its number);
        False when it picks none (the message is then an ordinary turn)."""
        state, choices = turn.state, pending.choices
        picked = next((c for c in choices if text.casefold() == c.payload.casefold()), None)
        # isdecimal, not isdigit: int() refuses "²", and a short text only (int() refuses 5,000 digits)
        if picked is None and text.isdecimal() and len(text) <= 3 and 1 <= int(text) <= len(choices):
            picked = choices[int(text) - 1]
        if picked is None:
            return False
        state.consecutive_failures = 0
        turn.decide("pick_choice", ReasonCode.CLARIFICATION_ANSWERED, "clarification answered")
        turn.say("retrieved", {"answer": picked.answer, "question": picked.question, "source": picked.id})
        turn.source = "retrieve"
        turn.hits = [HitSummary(picked.id, picked.question)]
        if state.requested_slot:  # a question asked during a form: back to the slot
            turn.ask(state.requested_slot)
        return True


def answer_key(hit: Hit, domain: Domain) -> str:
    """What makes two hits one answer. Records labelled with an intent the bot answers with its own template are
    variants of that one answer, so their intent is the key (a near-tie between two of them is no reason to ask);
    otherwise the answer text is: a question intent (``retrieve: true``, such as a catch-all ``shop_question``)
    holds records that answer different things."""
    intent = hit.record.intent
    spec = domain.intents.get(intent) if intent is not None else None
    if spec is not None and not spec.retrieve and domain.template_name(intent) is not None:
        return f"intent:{intent}"
    return "answer:" + same_answer_text(hit.record)


def same_answer(a: Hit, b: Hit, domain: Domain) -> bool:
    """Whether two hits give one answer (see :func:`answer_key`)."""
    return answer_key(a, domain) == answer_key(b, domain)


def ambiguous(result: SearchResult, domain: Domain) -> bool:
    """The top hit is within the margin of the threshold, or of a hit that is a different answer."""
    top = result.top
    if top is None:
        return False
    if abs(top.rank_score - result.threshold) < result.margin:
        return True
    rival = next((h for h in result.hits[1:] if not same_answer(h, top, domain)), None)
    return rival is not None and top.rank_score - rival.rank_score < result.margin
