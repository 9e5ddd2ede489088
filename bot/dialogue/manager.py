"""The dialogue manager: one customer message in, one reply out, the session kept consistent in the store.

A turn (DESIGN.md): parse the message (micro-batched with other conversations' turns), then, holding the
session's lock, load the state, answer a pending confirmation or clarification, else let the policy pick a
move and carry it out (forms in :mod:`bot.dialogue.forms`; retrieval and clarification in
:mod:`bot.dialogue.answers`; fallback and hand-over in :mod:`bot.dialogue.handoff`), save the state and
log the transcript. What led to the reply comes back as :class:`~bot.turns.TurnDetails`.

The turn is total: whatever a message holds, it gets a reply (or an apology) and raises nothing. Its text is
made safe first (:func:`~bot.messages.safe_text`); a parse that fails or takes longer than
``model_timeout_seconds`` gives an apology for that turn alone; a stored state that cannot be read back or
no longer fits the domain starts the conversation over with an apology (logged); and any other error inside
the turn gives an apology, leaves the session as it was, and is logged with its traceback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING

from bot.dialogue.answers import Answers
from bot.dialogue.forms import Forms
from bot.dialogue.handoff import Escalation, HandoffHook
from bot.dialogue.models import Models
from bot.dialogue.turn import Turn
from bot.domain.loader import import_callable
from bot.domain.schema import Domain
from bot.messages import Message, Reply, safe_text
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
    from nlu.extractors import EntityPipeline
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
        model_timeout_seconds: float = 30.0,
        entities: EntityPipeline | None = None,
    ) -> None:
        if model_timeout_seconds <= 0:
            raise ValueError(f"model_timeout_seconds must be positive, got {model_timeout_seconds}")
        self.domain = domain
        self.model_timeout_seconds = model_timeout_seconds
        #: the models a new turn answers with (replaced whole by :meth:`switch`)
        self.models = Models(understander, retriever)
        self.store = store
        self.transcripts = transcripts
        self.policy = policy or create_policy(domain.policy, domain)
        self.renderer = Renderer(domain)
        hook = handoff_hook or (import_callable(domain.handoff.hook) if domain.handoff.hook else None)
        self.escalation = Escalation(domain, hook)
        self.forms = Forms(domain, self.policy, self.escalation)
        self.answers = Answers(domain, None, self.escalation, model_timeout_seconds)  # each turn passes its index
        #: built-in and pattern entity extractors run on every parse (amounts, dates...); None: the tagger's only
        self.entities = entities
        self._store_down = False

    @property
    def nlu(self) -> Understander:
        """The NLU model new turns parse with."""
        return self.models.nlu

    @nlu.setter
    def nlu(self, understander: Understander) -> None:
        self.models = Models(understander, self.models.retriever)

    @property
    def retriever(self) -> Retriever | None:
        """The Q&A index new turns search."""
        return self.models.retriever

    @retriever.setter
    def retriever(self, retriever: Retriever | None) -> None:
        self.models = Models(self.models.nlu, retriever)

    def switch(self, models: Models) -> Models:
        """Answer the turns that start from now on with ``models``; the previous pair is returned (the turns
        already under way finish with it: close it once :meth:`Models.drained`)."""
        previous, self.models = self.models, models
        return previous

    # -- the turn ------------------------------------------------------------------------------
    async def handle(self, message: Message) -> Reply:
        """Answer one message; never raises (see the module docstring). Store failures give an apology
        (logged once until the store recovers). The whole turn uses the models current when it starts."""
        with self.models.in_use() as models:
            return await self._handle(message, models)

    async def _handle(self, message: Message, models: Models) -> Reply:
        started = time.perf_counter()
        text = safe_text(message.text)
        parse: ParseResult | None = None
        nlu_ms: float | None = None
        nlu_failure: tuple[ReasonCode, str] | None = None
        if text.strip():
            parse, nlu_failure = await self._parse(models.nlu, message.session_id, text)
            if parse is not None and self.entities is not None:
                parse = self._extract(parse, message.session_id)
            nlu_ms = _ms_since(started)
        state: SessionState | None = None
        store_ms: float | None = None
        try:
            locking = time.perf_counter()
            async with self.store.transaction(message.session_id) as state:
                store_ms = _ms_since(locking)
                self._check_fits_domain(state)
                state.channel, state.recipient_id = message.channel, message.recipient_id
                turn = Turn(state, self.domain, self.renderer)
                turn.retriever = models.retriever
                reset_reason = state.reset_reason
                if reset_reason is not None:
                    turn.say("session_reset")
                await self._decide(turn, text, parse, nlu_failure)
                if reset_reason is not None:
                    turn.decision.earlier.insert(0, ReasonCode.SESSION_RESET)
                    turn.decision.note = f"session reset ({reset_reason}); {turn.decision.note}"
                state.turn_count += 1
                state.remember(HistoryEntry(
                    user=text, bot="\n".join(m.text for m in turn.messages), source=turn.source,
                    intent=parse.intent.name if parse else None, completed=turn.completed,
                    slots=dict(turn.completed_slots) if turn.completed is not None else None,
                ))
                saving = time.perf_counter()
            store_ms = (store_ms or 0.0) + _ms_since(saving)
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
            turn = self._apology(message.session_id, ReasonCode.STORE_UNAVAILABLE, "store unavailable")
        except Exception as exc:  # one message must never cost more than its own turn
            log.exception("turn failed for session %r (nothing saved): %s: %s", message.session_id,
                          exc.__class__.__name__, exc)
            state = None
            turn = self._apology(message.session_id, ReasonCode.TURN_FAILED, f"turn failed: {exc.__class__.__name__}")
        reply = Reply([m for m in turn.messages if not m.empty], turn.source, turn.handoff)
        timings = Timings(_ms_since(started), nlu_ms, turn.retrieval_ms, store_ms)
        reply.details = self._details(parse, turn, state, timings, models.versions())
        await self._log(message, text, parse, reply, state)
        return reply

    async def _parse(self, nlu: Understander, session_id: str,
                     text: str) -> tuple[ParseResult | None, tuple[ReasonCode, str] | None]:
        """The parse of ``text``, or why there is none: the model failed on it, or took too long."""
        try:
            async with asyncio.timeout(self.model_timeout_seconds):  # no extra task per turn, unlike wait_for
                return await nlu.parse(text), None
        except TimeoutError:
            log.error("session %r: the NLU parse took longer than %g s; the customer gets an apology",
                      session_id, self.model_timeout_seconds)
            return None, (ReasonCode.NLU_TIMED_OUT, f"NLU timed out after {self.model_timeout_seconds:g} s")
        except Exception as exc:  # noqa: BLE001 - this message's turn apologises, the others are not affected
            log.error("session %r: the NLU parse failed; the customer gets an apology: %s: %s",
                      session_id, exc.__class__.__name__, exc)
            return None, (ReasonCode.NLU_FAILED, f"NLU failed: {exc.__class__.__name__}")

    def _extract(self, parse: ParseResult, session_id: str) -> ParseResult:
        """The parse with the built-in extractors' entities added (relative dates against the time now); the
        tagger's alone if an extractor fails."""
        assert self.entities is not None
        try:
            return self.entities.augment(parse, datetime.now().astimezone())
        except Exception as exc:  # noqa: BLE001 - the tagger's entities still serve the turn
            log.error("session %r: the entity extractors failed; the tagger's entities are used: %s: %s",
                      session_id, exc.__class__.__name__, exc)
            return parse

    def _apology(self, session_id: str, code: ReasonCode, note: str) -> Turn:
        turn = Turn(SessionState(session_id), self.domain, self.renderer)
        turn.say("error")
        turn.source = "error"
        turn.decide("error", code, note)
        return turn

    def _check_fits_domain(self, state: SessionState) -> None:
        """Start the conversation over when the stored state names an intent or slot the domain does not
        have (a state written for another version of the domain, or by hand): it cannot be carried on."""
        intents, slots = self.domain.intents, self.domain.slots
        named = [("active intent", state.active_intent, intents), ("requested slot", state.requested_slot, slots)]
        for form in state.paused:
            named += [("paused intent", form.intent, intents),
                      ("paused form's requested slot", form.requested_slot, slots)]
        if isinstance(state.pending, PendingConfirmation):
            named.append(("intent to confirm", state.pending.intent, intents))
        for what, name, known in named:
            if name is not None and name not in known:
                reason = f"its {what} {name!r} is not in the domain"
                log.warning("session %r: the stored state does not fit the domain (%s), so the conversation starts "
                            "over", state.session_id, reason)
                state.reset(reason)
                return

    async def release_handoff(self, session_id: str) -> None:
        """An agent hands the conversation back to the bot: the flag and the failure count are cleared."""
        async with self.store.transaction(session_id) as state:
            state.handoff, state.consecutive_failures = False, 0

    async def reset(self, session_id: str) -> None:
        """Forget the conversation."""
        async with self.store.lock(session_id):
            await self.store.delete(session_id)

    async def _decide(self, turn: Turn, text: str, parse: ParseResult | None,
                      nlu_failure: tuple[ReasonCode, str] | None) -> None:
        state = turn.state
        if state.handoff:
            turn.source, turn.handoff = "silent", True
            turn.decide("silent", ReasonCode.HANDED_OVER, "handed over: the bot stays silent")
            return
        if nlu_failure is not None:  # the state stays as it was: the customer may simply send it again
            turn.say("error")
            turn.source = "error"
            turn.decide("error", *nlu_failure)
            return
        if parse is None:
            turn.say("fallback")
            turn.source = "fallback"
            turn.decide("fallback", ReasonCode.EMPTY_MESSAGE, "empty message")
            return
        text = text.strip()
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
            await self.answers.retrieve(turn, text, turn.retriever)
        else:
            await self.escalation.fail(turn, decision.code, decision.reason or "fallback")

    # -- what the turn leaves behind -------------------------------------------------------------
    def _details(self, parse: ParseResult | None, turn: Turn, state: SessionState | None, timings: Timings,
                 versions: Versions) -> TurnDetails:
        if turn.completed is not None:
            slots = dict(turn.completed_slots)
        else:
            slots = dict(state.slots) if state is not None else {}
        return TurnDetails(
            intent=parse.intent.name if parse else None,
            confidence=round(parse.intent.confidence, 4) if parse else None,
            out_of_scope=parse.out_of_scope if parse else None,
            oos_score=parse.oos_score if parse else None,
            entities=[EntityValue(e.entity, e.value) for e in parse.entities] if parse else [],
            decision=turn.decision,
            slots=slots,
            completed=turn.completed,
            requested_slot=state.requested_slot if state is not None else None,
            hits=list(turn.hits),
            timings=timings,
            versions=versions,
        )

    def versions(self) -> Versions:
        """The versions and creation times of the NLU model and the Q&A index new turns answer with."""
        return self.models.versions()

    async def _log(self, message: Message, text: str, parse: ParseResult | None, reply: Reply,
                   state: SessionState | None) -> None:
        if self.transcripts is None:
            return
        details = reply.details
        record = TranscriptTurn(
            session_id=message.session_id,
            channel=message.channel,
            user_text=text,
            decision=details.decision.note,
            source=reply.source,
            reply=reply.to_dict(),
            parse=None if parse is None else {
                "intent": parse.intent.to_dict(),
                "intent_ranking": [i.to_dict() for i in parse.intent_ranking[:5]],
                "entities": [e.to_dict() for e in parse.entities],
                "out_of_scope": parse.out_of_scope,
                "oos_score": parse.oos_score,
                "threshold": self.policy.intent_threshold(parse),  # the confidence the intent needed
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
