"""The dialogue manager: one customer message in, one reply out, the session kept consistent in the store.

A turn (DESIGN.md): parse the message (micro-batched with other conversations' turns), then, holding the
session's lock, load the state, answer a pending confirmation or clarification, else let the policy pick a
move and carry it out (forms in :mod:`bot.dialogue.forms`; retrieval and clarification in
:mod:`bot.dialogue.answers`; fallback and hand-over in :mod:`bot.dialogue.handoff`), save the state and
log the transcript. What led to the reply comes back as :class:`~bot.turns.TurnDetails`.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from bot.dialogue.answers import Answers
from bot.dialogue.forms import Forms
from bot.dialogue.handoff import Escalation, HandoffHook
from bot.dialogue.turn import Turn
from bot.domain.loader import import_callable
from bot.domain.schema import Domain
from bot.messages import Message, Reply
from bot.policy import Decision, Policy, create_policy
from bot.render import Renderer
from bot.sessions.base import SessionStore
from bot.sessions.state import HistoryEntry, PendingClarification, PendingConfirmation, SessionState
from bot.turns import EntityValue, ReasonCode, Timings, TurnDetails, Versions
from bot.understanding import Retriever, Understander
from csbot.errors import StoreError
from csbot.transcripts.record import TranscriptTurn

if TYPE_CHECKING:
    from bot.transcripts.base import TranscriptSink
    from nlu.schema import ParseResult

log = logging.getLogger(__name__)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


class DialogueManager:
    """Decides and answers each turn; safe for many concurrent conversations in one event loop."""

    def __init__(
        self,
        domain: Domain,
        understander: Understander,
        store: SessionStore,
        retriever: Retriever | None = None,
        transcripts: TranscriptSink | None = None,
        policy: Policy | None = None,
        handoff_hook: HandoffHook | None = None,
    ) -> None:
        self.domain = domain
        self.nlu = understander
        self.store = store
        self.retriever = retriever
        self.transcripts = transcripts
        self.policy = policy or create_policy(domain.policy, domain)
        self.renderer = Renderer(domain)
        hook = handoff_hook or (import_callable(domain.handoff.hook) if domain.handoff.hook else None)
        self.escalation = Escalation(domain, hook)
        self.forms = Forms(domain, self.policy, self.escalation)
        self.answers = Answers(domain, retriever, self.escalation)
        self._store_down = False

    # -- the turn ------------------------------------------------------------------------------
    async def handle(self, message: Message) -> Reply:
        """Answer one message. Store failures give an apology (logged once until the store recovers)."""
        started = time.perf_counter()
        parse: ParseResult | None = None
        nlu_ms: float | None = None
        if message.text.strip():
            parse = await self.nlu.parse(message.text)
            nlu_ms = _ms_since(started)
        state: SessionState | None = None
        try:
            async with self.store.transaction(message.session_id) as state:
                state.channel, state.recipient_id = message.channel, message.recipient_id
                turn = Turn(state, self.domain, self.renderer)
                await self._decide(turn, message, parse)
                state.turn_count += 1
                state.remember(HistoryEntry(
                    user=message.text, bot="\n".join(m.text for m in turn.messages), source=turn.source,
                    intent=parse.intent.name if parse else None, completed=turn.completed,
                    slots=dict(turn.completed_slots) if turn.completed is not None else None,
                ))
            if self._store_down:
                log.warning("the session store answers again")
                self._store_down = False
        except StoreError as exc:
            if not self._store_down:
                log.error("session store failure; customers get an apology until it recovers: %s", exc)
                self._store_down = True
            else:
                log.debug("session store still failing: %s", exc)
            state = None
            turn = Turn(SessionState(message.session_id), self.domain, self.renderer)
            turn.say("error")
            turn.source = "error"
            turn.decide("error", ReasonCode.STORE_UNAVAILABLE, "store unavailable")
        reply = Reply([m for m in turn.messages if m.text or m.buttons], turn.source, turn.handoff)
        reply.details = self._details(parse, turn, state, Timings(_ms_since(started), nlu_ms, turn.retrieval_ms))
        await self._log(message, parse, reply, state)
        return reply

    async def release_handoff(self, session_id: str) -> None:
        """An agent hands the conversation back to the bot: the flag and the failure count are cleared."""
        async with self.store.transaction(session_id) as state:
            state.handoff, state.consecutive_failures = False, 0

    async def reset(self, session_id: str) -> None:
        """Forget the conversation."""
        async with self.store.lock(session_id):
            await self.store.delete(session_id)

    async def _decide(self, turn: Turn, message: Message, parse: ParseResult | None) -> None:
        state = turn.state
        if state.handoff:
            turn.source, turn.handoff = "silent", True
            turn.decide("silent", ReasonCode.HANDED_OVER, "handed over: the bot stays silent")
            return
        if parse is None:
            turn.say("fallback")
            turn.source = "fallback"
            turn.decide("fallback", ReasonCode.EMPTY_MESSAGE, "empty message")
            return
        text = message.text.strip()
        pending, state.pending = state.pending, None
        if isinstance(pending, PendingClarification) and self.answers.pick_choice(turn, pending, text):
            return
        if isinstance(pending, PendingConfirmation) and await self.forms.answer_confirmation(turn, pending, text, parse):
            return
        decision = self.policy.decide(state, parse)
        turn.decide(decision.move, decision.code, f"{decision.move}: {decision.reason}" if decision.reason else decision.move)
        await self._carry_out(turn, decision, parse, text)
        if isinstance(pending, PendingConfirmation):
            self.forms.ask_confirmation_again(turn, pending)

    async def _carry_out(self, turn: Turn, decision: Decision, parse: ParseResult, text: str) -> None:
        move = decision.move
        if move == "handoff":
            await self.escalation.hand_over(turn, decision.code, decision.reason)
        elif move == "cancel":
            await self.forms.cancel(turn)
        elif move == "chitchat":
            state = turn.state
            state.consecutive_failures = 0
            turn.say(self.domain.template_name(decision.intent or "") or "fallback")
            turn.source = "template"
            if state.requested_slot:
                turn.ask(state.requested_slot)
        elif move == "switch":
            await self.forms.switch(turn, decision.intent or "", parse)
        elif move == "start":
            await self.forms.start(turn, decision.intent or "", parse)
        elif move == "fill_slot":
            await self.forms.fill(turn, parse, text)
        elif move == "retrieve":
            await self.answers.retrieve(turn, text)
        else:
            await self.escalation.fail(turn, decision.code, decision.reason or "fallback")

    # -- what the turn leaves behind -------------------------------------------------------------
    def _details(self, parse: ParseResult | None, turn: Turn, state: SessionState | None, timings: Timings) -> TurnDetails:
        if turn.completed is not None:
            slots = dict(turn.completed_slots)
        else:
            slots = dict(state.slots) if state is not None else {}
        return TurnDetails(
            intent=parse.intent.name if parse else None,
            confidence=round(parse.intent.confidence, 4) if parse else None,
            out_of_scope=parse.out_of_scope if parse else None,
            entities=[EntityValue(e.entity, e.value) for e in parse.entities] if parse else [],
            decision=turn.decision,
            slots=slots,
            completed=turn.completed,
            requested_slot=state.requested_slot if state is not None else None,
            hits=list(turn.hits),
            timings=timings,
            versions=self.versions(),
        )

    def versions(self) -> Versions:
        """The versions and creation times of the NLU model and the Q&A index this manager answers with."""
        retriever = self.retriever
        return Versions(self.nlu.version, retriever.version if retriever is not None else "",
                        self.nlu.created, retriever.created if retriever is not None else "")

    async def _log(self, message: Message, parse: ParseResult | None, reply: Reply, state: SessionState | None) -> None:
        if self.transcripts is None:
            return
        details = reply.details
        record = TranscriptTurn(
            session_id=message.session_id,
            channel=message.channel,
            user_text=message.text,
            decision=details.decision.note,
            source=reply.source,
            reply=reply.to_dict(),
            parse=None if parse is None else {
                "intent": parse.intent.to_dict(),
                "intent_ranking": [i.to_dict() for i in parse.intent_ranking[:5]],
                "entities": [e.to_dict() for e in parse.entities],
                "out_of_scope": parse.out_of_scope,
            },
            hits=[h.to_dict() for h in details.hits],
            latency_ms=details.timings.total_ms,
            versions={"nlu": details.versions.model, "nlu_created": details.versions.model_created,
                      "index": details.versions.index, "index_created": details.versions.index_created},
            code=details.decision.code.value,
            turn=state.turn_count if state is not None else 0,
        )
        try:
            await self.transcripts.append(record)
        except Exception as exc:  # noqa: BLE001 - a transcript failure must not cost the customer a reply
            log.error("transcript append failed: %s: %s", exc.__class__.__name__, exc)
