"""The dialogue manager: one customer message in, one reply out, the session kept consistent in the store.

A turn (DESIGN.md): parse the message (micro-batched with other conversations' turns), then, holding the
session's lock, load the state, let the policy pick a move, carry it out (templates, slot questions,
confirmations, actions, retrieval, clarification, hand-over), save the state and log the transcript.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot.domain.loader import import_callable
from bot.domain.schema import Domain
from bot.messages import Button, Message, OutgoingMessage, Reply
from bot.policy import Decision, Policy, create_policy
from bot.policy.rules import STOP_INTENTS
from bot.render import Renderer
from bot.sessions.base import SessionStore
from bot.sessions.state import SessionState
from bot.slots import from_bare_reply, from_entities, validate
from bot.transcripts.base import TranscriptSink
from bot.transcripts.record import TranscriptTurn
from bot.understanding import Retriever, Understander
from csbot.errors import StoreError

if TYPE_CHECKING:
    from nlu.schema import ParseResult
    from retrieval.records import SearchResult

log = logging.getLogger(__name__)

YES = frozenset({"yes", "y", "yeah", "yep", "yup", "sure", "ok", "okay", "confirm", "correct", "please do", "do it",
                 "go ahead", "yes please"})
NO = frozenset({"no", "n", "nope", "nah", "don't", "dont", "no thanks", "stop", "never mind", "nevermind", "cancel"})

HandoffHook = Callable[[SessionState, str], Awaitable[None]]


class _Turn:
    """What one turn accumulates: messages, the decision, hits, flags."""

    def __init__(self) -> None:
        self.messages: list[OutgoingMessage] = []
        self.source = "fallback"
        self.decision = ""
        self.hits: list[dict[str, Any]] = []
        self.handoff = False
        self.completed: tuple[str, dict[str, Any]] | None = None


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
        self.handoff_hook = handoff_hook or (import_callable(domain.handoff.hook) if domain.handoff.hook else None)
        self._actions: dict[str, Callable[..., Awaitable[Any]]] = {}
        self._store_down = False

    # -- the turn ------------------------------------------------------------------------------
    async def handle(self, message: Message) -> Reply:
        """Answer one message. Store failures give an apology (logged once until the store recovers)."""
        started = time.perf_counter()
        parse = await self.nlu.parse(message.text) if message.text.strip() else None
        turn = _Turn()
        state: SessionState | None = None
        try:
            async with self.store.transaction(message.session_id) as state:
                await self._decide(state, message, parse, turn)
                state.turn_count += 1
                remembered = {"user": message.text, "bot": "\n".join(m.text for m in turn.messages),
                              "source": turn.source, "intent": parse.intent.name if parse else None}
                if turn.completed is not None:
                    remembered.update(completed=turn.completed[0], slots=turn.completed[1])
                state.remember(remembered)
            if self._store_down:
                log.warning("the session store answers again")
                self._store_down = False
        except StoreError as exc:
            if not self._store_down:
                log.error("session store failure; customers get an apology until it recovers: %s", exc)
                self._store_down = True
            else:
                log.debug("session store still failing: %s", exc)
            turn = _Turn()
            turn.messages = [self.renderer.render("error", SessionState(message.session_id))]
            turn.source, turn.decision = "error", "store unavailable"
        reply = Reply([m for m in turn.messages if m.text or m.buttons], turn.source, turn.handoff)
        reply.details = {
            "intent": parse.intent.name if parse else None,
            "confidence": round(parse.intent.confidence, 4) if parse else None,
            "out_of_scope": parse.out_of_scope if parse else None,
            "entities": [{"entity": e.entity, "value": e.value} for e in parse.entities] if parse else [],
            "decision": turn.decision,
            "slots": dict(turn.completed[1]) if turn.completed else dict(state.slots) if state else {},
            "completed": turn.completed[0] if turn.completed else None,
            "requested_slot": state.requested_slot if state else None,
            "hits": turn.hits,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        }
        await self._log(message, parse, turn, reply, state, started)
        return reply

    async def release_handoff(self, session_id: str) -> None:
        """An agent hands the conversation back to the bot: the flag and the failure count are cleared."""
        async with self.store.transaction(session_id) as state:
            state.handoff, state.consecutive_failures = False, 0

    async def reset(self, session_id: str) -> None:
        """Forget the conversation."""
        async with self.store.lock(session_id):
            await self.store.delete(session_id)

    async def _decide(self, state: SessionState, message: Message, parse: ParseResult | None, turn: _Turn) -> None:
        if state.handoff:
            turn.source, turn.decision, turn.handoff = "silent", "handed over: the bot stays silent", True
            return
        if parse is None:
            self._say(turn, "fallback", state)
            turn.source, turn.decision = "fallback", "empty message"
            return
        text = message.text.strip()
        pending = None
        if state.pending is not None:
            pending, state.pending = state.pending, None
            if pending.get("kind") == "clarify" and await self._pick_choice(pending, text, state, turn):
                return
            if pending.get("kind") == "confirm":
                answer = self._yes_no(text, parse)
                if answer is True:
                    await self._complete(state, pending["intent"], turn, confirmed=True)
                    return
                if answer is False:
                    self._clear_form(state)
                    self._say(turn, "confirm_declined", state)
                    turn.source, turn.decision = "template", "confirmation declined"
                    await self._resume(state, turn)
                    return
        decision = self.policy.decide(state, parse)
        turn.decision = f"{decision.move}: {decision.reason}" if decision.reason else decision.move
        await self._carry_out(decision, state, parse, text, turn)
        if pending is not None and pending.get("kind") == "confirm":
            self._ask_confirmation_again(pending, state, turn)

    def _ask_confirmation_again(self, pending: dict[str, Any], state: SessionState, turn: _Turn) -> None:
        """A question asked at a confirmation is answered, then the confirmation asked again, unless the
        turn dropped, changed or replaced the form (cancel, switch, correction, hand-over)."""
        intent = pending.get("intent")
        if (state.active_intent != intent or state.pending is not None or state.requested_slot is not None
                or state.handoff or intent not in self.domain.intents):
            return
        state.pending = pending
        spec = self.domain.intents[intent]
        self._say(turn, spec.confirm or f"confirm_{intent}", state)
        turn.decision += " (the confirmation is asked again)"

    async def _carry_out(self, decision: Decision, state: SessionState, parse: ParseResult, text: str, turn: _Turn) -> None:
        move = decision.move
        if move == "handoff":
            await self._handoff(state, turn, decision.reason)
        elif move == "cancel":
            self._clear_form(state)
            self._say(turn, "cancelled", state)
            turn.source = "template"
            await self._resume(state, turn)
        elif move == "chitchat":
            state.consecutive_failures = 0
            self._say(turn, self.domain.template_name(decision.intent or "") or "fallback", state)
            turn.source = "template"
            if state.requested_slot:
                self._ask(state, state.requested_slot, turn)
        elif move == "switch":
            state.paused.append({"intent": state.active_intent, "slots": dict(state.slots),
                                 "requested_slot": state.requested_slot})
            state.active_intent, state.slots, state.requested_slot = None, {}, None
            await self._start(decision.intent or "", state, parse, turn)
        elif move == "start":
            await self._start(decision.intent or "", state, parse, turn)
        elif move == "fill_slot":
            await self._fill(state, parse, text, turn)
        elif move == "retrieve":
            await self._retrieve(state, parse, text, turn)
        else:
            await self._fail(state, turn, decision.reason or "fallback")

    # -- forms -----------------------------------------------------------------------------------
    async def _start(self, intent: str, state: SessionState, parse: ParseResult, turn: _Turn) -> None:
        state.consecutive_failures = 0
        state.active_intent, state.slots, state.requested_slot = intent, {}, None
        spec = self.domain.intents[intent]
        for slot in spec.required_slots:
            value = from_entities(slot, self.domain.slots[slot], parse.entities)
            if value is not None and validate(slot, self.domain.slots[slot], value).ok:
                state.slots[slot] = validate(slot, self.domain.slots[slot], value).value
        await self._advance(state, turn)

    async def _fill(self, state: SessionState, parse: ParseResult, text: str, turn: _Turn) -> None:
        """Take slot values from this message: entities for any slot of the form, else a bare reply."""
        intent = state.active_intent
        if intent is None:
            past = self._correctable(state, parse)
            if past is None:
                await self._fail(state, turn, "a value with no question pending")
                return
            intent = past["completed"]
            state.active_intent, state.requested_slot, state.slots = intent, None, dict(past.get("slots") or {})
            turn.decision += " (a correction of the last request)"
        spec = self.domain.intents[intent]
        filled_now: set[str] = set()
        for slot in spec.required_slots:
            value = from_entities(slot, self.domain.slots[slot], parse.entities)
            if value is None:
                continue
            check = validate(slot, self.domain.slots[slot], value)
            if check.ok:
                state.slots[slot] = check.value
                filled_now.add(slot)
        asked = state.requested_slot
        if asked and not filled_now:  # a bare reply to the question asked
            slot_spec = self.domain.slots[asked]
            check = validate(asked, slot_spec, from_bare_reply(slot_spec, text))
            if not check.ok:
                state.consecutive_failures += 1
                if state.consecutive_failures >= self.domain.handoff.max_invalid_values:
                    await self._handoff(state, turn, f"{state.consecutive_failures} invalid answers in a row for {asked}")
                    return
                reason = slot_spec.invalid or f"Sorry, {check.problem}."
                turn.messages.append(self.renderer.text(reason, state, {"reason": check.problem, "slot": asked}))
                self._ask(state, asked, turn)
                turn.source = "ask_slot"
                return
            state.slots[asked] = check.value
        state.consecutive_failures = 0
        await self._advance(state, turn)

    def _correctable(self, state: SessionState, parse: ParseResult) -> dict[str, Any] | None:
        """A value with no form open corrects a recently completed request ("no, it's 48213")."""
        for past in reversed(state.history[-3:]):
            intent = past.get("completed")
            if intent and intent in self.domain.intents:
                slots = self.domain.intents[intent].required_slots
                if any(from_entities(s, self.domain.slots[s], parse.entities) for s in slots):
                    return past
        return None

    async def _advance(self, state: SessionState, turn: _Turn) -> None:
        """Ask the next missing slot, or confirm, or complete the intent."""
        intent = state.active_intent or ""
        spec = self.domain.intents[intent]
        missing = [s for s in spec.required_slots if s not in state.slots]
        if missing:
            self._ask(state, missing[0], turn)
            turn.source = "ask_slot"
            return
        state.requested_slot = None
        if spec.sensitive:
            state.pending = {"kind": "confirm", "intent": intent}
            self._say(turn, spec.confirm or f"confirm_{intent}", state)
            turn.source = "template"
            turn.decision += " → confirm"
            return
        await self._complete(state, intent, turn, confirmed=False)

    async def _complete(self, state: SessionState, intent: str, turn: _Turn, confirmed: bool) -> None:
        """Run the intent's action (with a timeout) and answer with its template."""
        spec = self.domain.intents[intent]
        variables: dict[str, Any] = {}
        template_override: str | None = None
        if spec.action:
            try:
                result = await asyncio.wait_for(self._action(spec.action)(slots=dict(state.slots), session=state),
                                                self.domain.action_timeout_seconds)
            except Exception as exc:  # noqa: BLE001 - an action's failure must not break the conversation
                cause = "timed out" if isinstance(exc, asyncio.TimeoutError) else f"{exc.__class__.__name__}: {exc}"
                log.error("action %s for intent %s failed (session %s): %s", spec.action, intent, state.session_id, cause)
                self._clear_form(state)
                self._say(turn, "action_failed", state)
                turn.source, turn.decision = "error", f"action failed: {cause}"
                return
            if isinstance(result, dict):
                variables = dict(result)
                template_override = variables.pop("template", None)
                if template_override is not None and template_override not in spec.alternatives:
                    log.warning("action %s picked template %r, which intent %s does not list in 'alternatives'",
                                spec.action, template_override, intent)
            elif isinstance(result, (list, tuple)):
                turn.messages.extend(OutgoingMessage(str(m)) for m in result)
            elif isinstance(result, str):
                turn.messages.append(OutgoingMessage(result))
        template = template_override or self.domain.template_name(intent)
        if template:
            self._say(turn, template, state, variables)
        turn.source = "template"
        turn.completed = (intent, dict(state.slots))
        self._clear_form(state)
        await self._resume(state, turn)

    def _clear_form(self, state: SessionState) -> None:
        state.active_intent, state.slots, state.requested_slot, state.pending = None, {}, None, None

    async def _resume(self, state: SessionState, turn: _Turn) -> None:
        """After a form ends, go back to one put aside by a topic switch."""
        if not state.paused:
            return
        form = state.paused.pop()
        state.active_intent, state.slots = form["intent"], dict(form["slots"])
        self._say(turn, "resume", state, {"topic": (form["intent"] or "").replace("_", " ")})
        await self._advance(state, turn)

    def _ask(self, state: SessionState, slot: str, turn: _Turn) -> None:
        state.requested_slot = slot
        turn.messages.append(self.renderer.text(self.domain.slots[slot].prompt, state, {"slot": slot}))

    # -- retrieval, clarification, hand-over ----------------------------------------------------
    async def _retrieve(self, state: SessionState, parse: ParseResult, text: str, turn: _Turn) -> None:
        if self.retriever is None:
            await self._fail(state, turn, "no Q&A index")
            return
        result: SearchResult = await self.retriever.search(text)
        turn.hits = [{"id": h.record.id, "question": h.record.question, "score": round(h.score, 4),
                      "rank_score": round(h.rank_score, 4)} for h in result.hits]
        threshold = self.domain.thresholds.retrieval if self.domain.thresholds.retrieval is not None else result.threshold
        margin = self.domain.thresholds.ambiguity_margin if self.domain.thresholds.ambiguity_margin is not None else result.margin
        result.threshold, result.margin = threshold, margin
        top = result.top
        if top is None or top.rank_score < threshold - margin:
            await self._fail(state, turn, "no past answer close enough")
            return
        if result.ambiguous:
            choices, seen = [], set()
            for hit in result.hits:
                if hit.record.answer in seen or hit.rank_score < threshold - margin:
                    continue
                seen.add(hit.record.answer)
                choices.append({"payload": hit.record.question, "question": hit.record.question,
                                "answer": hit.record.answer, "id": hit.record.id})
                if len(choices) == 3:
                    break
            if len(choices) > 1:
                state.pending = {"kind": "clarify", "choices": choices}
                message = self.renderer.render("clarify", state)
                message.buttons = [Button(c["question"], c["payload"]) for c in choices]
                turn.messages.append(message)
                turn.source = "clarify"
                return
        if top.rank_score < threshold:  # ambiguous with one answer, or exactly at threshold - margin
            await self._fail(state, turn, "the closest past answer is below the threshold")
            return
        state.consecutive_failures = 0
        self._say(turn, "retrieved", state, {"answer": top.record.answer, "question": top.record.question,
                                              "source": top.record.source or top.record.id})
        turn.source = "retrieve"
        if state.requested_slot:
            self._ask(state, state.requested_slot, turn)

    async def _pick_choice(self, pending: dict[str, Any], text: str, state: SessionState, turn: _Turn) -> bool:
        choices = pending.get("choices", [])
        picked = next((c for c in choices if text.casefold() == c["payload"].casefold()), None)
        if picked is None and text.isdigit() and 1 <= int(text) <= len(choices):
            picked = choices[int(text) - 1]
        if picked is None:
            return False
        state.consecutive_failures = 0
        self._say(turn, "retrieved", state, {"answer": picked["answer"], "question": picked["question"], "source": picked["id"]})
        turn.source, turn.decision = "retrieve", "clarification answered"
        turn.hits = [{"id": picked["id"], "question": picked["question"]}]
        if state.requested_slot:  # a question asked during a form: back to the slot
            self._ask(state, state.requested_slot, turn)
        return True

    async def _fail(self, state: SessionState, turn: _Turn, reason: str) -> None:
        state.consecutive_failures += 1
        if state.consecutive_failures >= self.domain.handoff.max_failures:
            await self._handoff(state, turn, f"{state.consecutive_failures} turns in a row not understood")
            return
        self._say(turn, "fallback", state)
        turn.source = "fallback"
        turn.decision = turn.decision or reason
        if state.requested_slot:  # an unanswered question during a form: back to the slot
            self._ask(state, state.requested_slot, turn)

    async def _handoff(self, state: SessionState, turn: _Turn, reason: str) -> None:
        self._clear_form(state)
        state.paused.clear()
        state.handoff = True
        self._say(turn, self.domain.handoff.template, state, {"reason": reason})
        turn.source, turn.handoff = "handoff", True
        turn.decision = f"handoff: {reason}"
        if self.handoff_hook is not None:
            try:
                await asyncio.wait_for(self.handoff_hook(state, reason), self.domain.action_timeout_seconds)
            except Exception as exc:  # noqa: BLE001 - the customer is told either way
                log.error("hand-over hook failed for session %s: %s: %s", state.session_id, exc.__class__.__name__, exc)

    # -- helpers ---------------------------------------------------------------------------------
    def _say(self, turn: _Turn, template: str, state: SessionState, variables: dict[str, Any] | None = None) -> None:
        turn.messages.append(self.renderer.render(template, state, variables))

    def _yes_no(self, text: str, parse: ParseResult) -> bool | None:
        lowered = text.casefold().strip(" .!")
        if lowered in YES:
            return True
        if lowered in NO:
            return False
        if self.policy.confident(parse) if hasattr(self.policy, "confident") else parse.intent.confidence >= 0.5:
            if parse.intent.name == "affirm":
                return True
            if parse.intent.name == "deny" or parse.intent.name in STOP_INTENTS:
                return False
        return None

    def _action(self, dotted: str) -> Callable[..., Awaitable[Any]]:
        if dotted not in self._actions:
            self._actions[dotted] = import_callable(dotted)
        return self._actions[dotted]

    async def _log(self, message: Message, parse: ParseResult | None, turn: _Turn, reply: Reply,
                   state: SessionState | None, started: float) -> None:
        if self.transcripts is None:
            return
        record = TranscriptTurn(
            session_id=message.session_id,
            channel=message.channel,
            user_text=message.text,
            decision=turn.decision,
            source=reply.source,
            reply=reply.to_dict(),
            parse=None if parse is None else {
                "intent": parse.intent.to_dict(),
                "intent_ranking": [i.to_dict() for i in parse.intent_ranking[:5]],
                "entities": [e.to_dict() for e in parse.entities],
                "out_of_scope": parse.out_of_scope,
            },
            hits=turn.hits,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
            versions={"nlu": self.nlu.version, "index": self.retriever.version if self.retriever else ""},
            turn=state.turn_count if state is not None else 0,
        )
        try:
            await self.transcripts.append(record)
        except Exception as exc:  # noqa: BLE001 - a transcript failure must not cost the customer a reply
            log.error("transcript append failed: %s: %s", exc.__class__.__name__, exc)
