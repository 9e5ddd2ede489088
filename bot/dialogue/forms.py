"""Forms: filling an intent's required slots, confirming sensitive intents, running actions, and putting a
form aside for another request (topic switch) and back.

A form starts with the values the message already carries, asks for each missing slot in turn (a bare
reply answers the slot asked; an entity for any slot of the form fills or corrects it), asks for a yes or
no when the intent is ``sensitive``, then runs the intent's action (with a timeout) and answers with its
template. A value right after a completed request corrects it ("no, it's 51730").
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot.dialogue.handoff import Escalation
from bot.dialogue.turn import Turn
from bot.domain.loader import import_callable
from bot.domain.schema import Domain
from bot.messages import OutgoingMessage
from bot.policy import STOP_INTENTS, Policy
from bot.sessions.state import HistoryEntry, PausedForm, PendingConfirmation
from bot.slots import from_bare_reply, from_entities, validate
from bot.turns import ReasonCode

if TYPE_CHECKING:
    from nlu.schema import ParseResult

log = logging.getLogger(__name__)

#: A request that refers back to the one just completed ("cancel it", "can you change that one too?").
REFERS_BACK = re.compile(r"\b(?:it|that|this|that one|this one|the same(?: one)?|same order|them|those)\b",
                         re.IGNORECASE)
#: ... unless it asks about another one ("and the other one?"): then the slot is asked.
OTHER_ONE = re.compile(r"\b(?:other|another|different|next)\b", re.IGNORECASE)
#: How many turns back a completed request may be referred to.
CARRY_OVER_TURNS = 3

YES = frozenset({"yes", "y", "yeah", "yep", "yup", "sure", "ok", "okay", "confirm", "correct", "please do", "do it",
                 "go ahead", "yes please"})
NO = frozenset({"no", "n", "nope", "nah", "don't", "dont", "no thanks", "stop", "never mind", "nevermind", "cancel"})


class Forms:
    """Runs forms for the dialogue manager; ``policy`` says when a parse is confident enough to read a yes or
    no from its intent, ``escalation`` takes over when values keep being invalid."""

    def __init__(self, domain: Domain, policy: Policy, escalation: Escalation) -> None:
        self.domain = domain
        self.policy = policy
        self.escalation = escalation
        self._actions: dict[str, Callable[..., Awaitable[Any]]] = {}

    # -- starting, filling, advancing ----------------------------------------------------------
    async def start(self, turn: Turn, intent: str, parse: ParseResult) -> None:
        """Begin ``intent`` with the values this message carries, and those of the request just completed when
        the message refers back to it ("cancel it")."""
        state = turn.state
        state.consecutive_failures = 0
        state.active_intent, state.slots, state.requested_slot = intent, {}, None
        required = self.domain.intents[intent].required_slots
        for slot in required:
            value = from_entities(slot, self.domain.slots[slot], parse.entities)
            if value is not None:
                check = validate(slot, self.domain.slots[slot], value)
                if check.ok:
                    state.slots[slot] = check.value
        missing = [slot for slot in required if slot not in state.slots]
        if missing and REFERS_BACK.search(parse.text[:300]) and not OTHER_ONE.search(parse.text[:300]):
            carried = self._carry_over(turn, missing)
            if carried:
                shown = ", ".join(f"{k}={v}" for k, v in carried.items())
                turn.decision.because(ReasonCode.SLOT_CARRIED_OVER, f"{turn.decision.note} (carried over: {shown})")
        await self.advance(turn)

    def _carry_over(self, turn: Turn, slots: list[str]) -> dict[str, Any]:
        """Fill ``slots`` from the most recent completed request (of the last few turns) that had them."""
        state = turn.state
        carried: dict[str, Any] = {}
        for past in reversed(state.history[-CARRY_OVER_TURNS:]):
            if past.completed is None or not past.slots:
                continue
            for slot in slots:
                if slot not in carried and slot in past.slots:
                    check = validate(slot, self.domain.slots[slot], str(past.slots[slot]))
                    if check.ok:
                        carried[slot] = check.value
            break  # only the latest completed request is referred to
        state.slots.update(carried)
        return carried

    async def switch(self, turn: Turn, intent: str, parse: ParseResult) -> None:
        """Put the form in progress aside (it resumes when ``intent`` is done) and start ``intent``."""
        state = turn.state
        if state.active_intent is not None:
            state.paused.append(PausedForm(state.active_intent, dict(state.slots), state.requested_slot))
        state.active_intent, state.slots, state.requested_slot = None, {}, None
        await self.start(turn, intent, parse)

    async def cancel(self, turn: Turn) -> None:
        """The customer dropped the form ("stop", "never mind", "no thanks"): say so. The forms put aside for it
        are dropped too: a customer who abandons what they were doing does not want an older request back."""
        turn.state.clear_form()
        turn.state.paused.clear()
        turn.say("cancelled")
        turn.source = "template"

    async def fill(self, turn: Turn, parse: ParseResult, text: str) -> None:
        """Take slot values from this message: entities for any slot of the form, else a bare reply."""
        state = turn.state
        intent = state.active_intent
        if intent is None:
            past = self._correctable(turn, parse)
            if past is None or past.completed is None:
                await self.escalation.fail(turn, ReasonCode.NO_QUESTION_PENDING, "a value with no question pending")
                return
            intent = past.completed
            state.active_intent, state.requested_slot, state.slots = intent, None, dict(past.slots or {})
            turn.decision.because(ReasonCode.CORRECTION, turn.decision.note + " (a correction of the last request)")
        filled_now: set[str] = set()
        for slot in self.domain.intents[intent].required_slots:
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
                    await self.escalation.hand_over(
                        turn, ReasonCode.INVALID_VALUES,
                        f"{state.consecutive_failures} invalid answers in a row for {asked}")
                    return
                code = ReasonCode.VALUE_TOO_LONG if check.too_long else ReasonCode.INVALID_VALUE
                turn.decision.because(code, f"{turn.decision.note} ({check.problem})")
                # the reason quotes the customer's words: it goes in as a value, never as template text
                variables = {"reason": check.problem, "slot": asked}
                if slot_spec.invalid is not None:
                    turn.say_text(slot_spec.invalid, variables)
                else:
                    turn.say("invalid_value", variables)
                turn.ask(asked)
                turn.source = "ask_slot"
                return
            state.slots[asked] = check.value
        state.consecutive_failures = 0
        await self.advance(turn)

    def _correctable(self, turn: Turn, parse: ParseResult) -> HistoryEntry | None:
        """A value with no form open corrects a recently completed request ("no, it's 48213")."""
        for past in reversed(turn.state.history[-3:]):
            intent = past.completed
            if intent and intent in self.domain.intents:
                slots = self.domain.intents[intent].required_slots
                if any(from_entities(s, self.domain.slots[s], parse.entities) for s in slots):
                    return past
        return None

    async def advance(self, turn: Turn) -> None:
        """Ask the next missing slot, or confirm, or complete the intent."""
        state = turn.state
        intent = state.active_intent or ""
        spec = self.domain.intents[intent]
        missing = [s for s in spec.required_slots if s not in state.slots]
        if missing:
            turn.ask(missing[0])
            turn.source = "ask_slot"
            return
        state.requested_slot = None
        if spec.sensitive:
            state.pending = PendingConfirmation(intent)
            turn.say(spec.confirm or f"confirm_{intent}")
            turn.source = "template"
            turn.decision.because(ReasonCode.CONFIRMATION_ASKED, turn.decision.note + " → confirm")
            return
        await self.complete(turn, intent)

    # -- confirmation --------------------------------------------------------------------------
    async def answer_confirmation(self, turn: Turn, pending: PendingConfirmation, text: str, parse: ParseResult) -> bool:
        """A yes runs the intent, a no drops the form; False when the message is neither (the policy decides)."""
        answer = self._yes_no(text, parse)
        if answer is None:
            return False
        if answer:
            turn.decide("confirm", ReasonCode.CONFIRMED, f"confirmed {pending.intent}")
            await self.complete(turn, pending.intent)
            return True
        turn.state.clear_form()
        turn.say("confirm_declined")
        turn.source = "template"
        turn.decide("confirm", ReasonCode.CONFIRMATION_DECLINED, "confirmation declined")
        await self.resume(turn)
        return True

    def ask_confirmation_again(self, turn: Turn, pending: PendingConfirmation) -> None:
        """A question asked at a confirmation is answered, then the confirmation asked again, unless the
        turn dropped, changed or replaced the form (cancel, switch, correction, hand-over)."""
        state, intent = turn.state, pending.intent
        if (state.active_intent != intent or state.pending is not None or state.requested_slot is not None
                or state.handoff or intent not in self.domain.intents):
            return
        state.pending = pending
        turn.say(self.domain.intents[intent].confirm or f"confirm_{intent}")
        turn.decision.because(ReasonCode.CONFIRMATION_ASKED_AGAIN,
                              turn.decision.note + " (the confirmation is asked again)")

    def _yes_no(self, text: str, parse: ParseResult) -> bool | None:
        lowered = text.casefold().strip(" .!")
        if lowered in YES:
            return True
        if lowered in NO:
            return False
        if self.policy.confident(parse):
            if parse.intent.name == "affirm":
                return True
            if parse.intent.name == "deny" or parse.intent.name in STOP_INTENTS:
                return False
        return None

    # -- completing ----------------------------------------------------------------------------
    async def complete(self, turn: Turn, intent: str) -> None:
        """Run the intent's action (with a timeout) and answer with its template."""
        state = turn.state
        spec = self.domain.intents[intent]
        variables: dict[str, Any] = {}
        template_override: str | None = None
        if spec.action:
            try:
                result = await asyncio.wait_for(self._action(spec.action)(slots=dict(state.slots), session=state),
                                                self.domain.action_timeout_seconds)
            except Exception as exc:  # noqa: BLE001 - an action's failure must not break the conversation
                timed_out = isinstance(exc, asyncio.TimeoutError)
                cause = "timed out" if timed_out else f"{exc.__class__.__name__}: {exc}"
                log.error("action %s for intent %s failed (session %s): %s", spec.action, intent, state.session_id, cause)
                state.clear_form()
                turn.say("action_failed")
                turn.source = "error"
                turn.decision.because(ReasonCode.ACTION_TIMED_OUT if timed_out else ReasonCode.ACTION_FAILED,
                                      f"action failed: {cause}")
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
            turn.say(template, variables)
        turn.source = "template"
        turn.completed, turn.completed_slots = intent, dict(state.slots)
        state.clear_form()
        await self.resume(turn)

    async def resume(self, turn: Turn) -> None:
        """After a form ends, go back to one put aside by a topic switch."""
        state = turn.state
        if not state.paused:
            return
        form = state.paused.pop()
        state.active_intent, state.slots = form.intent, dict(form.slots)
        turn.say("resume", {"topic": form.intent.replace("_", " ")})
        await self.advance(turn)

    def _action(self, dotted: str) -> Callable[..., Awaitable[Any]]:
        if dotted not in self._actions:
            self._actions[dotted] = import_callable(dotted)
        return self._actions[dotted]
