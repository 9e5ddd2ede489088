"""The default policy: a few ordered rules over the intent's confidence, the form in progress and the domain."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.policy.base import REPLY_INTENTS, Decision, Policy
from bot.sessions.state import SessionState
from bot.slots import from_bare_reply, from_entities, validate
from bot.turns import ReasonCode

if TYPE_CHECKING:
    from nlu.schema import ParseResult


class RulePolicy(Policy):
    """Rules, first match wins:

    1. a confident hand-over intent (a request for a person, a complaint) hands over;
    2. with a form in progress: leaving it (a confident stop-like intent, or "never mind", "no thanks":
       :meth:`Policy.leaves_form`) cancels it, chit-chat and questions for the Q&A index are answered beside
       it (the slot is asked again), a confident other request switches topic, an out-of-scope message that
       is no value for the slot asked is searched (then the slot asked again), anything else is taken as the
       answer to the slot asked;
    3. otherwise: chit-chat and intents with templates, slots or actions start; intents marked as
       questions, out-of-scope messages and low confidence go to retrieval; bare replies with no
       question pending fall back.

    "Confident" is :meth:`Policy.confident`: the intent's threshold (or the domain's), and in scope.
    """

    def decide(self, state: SessionState, parse: ParseResult) -> Decision:
        name = parse.intent.name
        spec = self.domain.intents.get(name)
        confident = self.confident(parse)
        if confident and spec is not None and spec.handoff:
            if name == "complaint":
                return Decision("handoff", name, "complaint", ReasonCode.COMPLAINT)
            return Decision("handoff", name, "the customer asked for a person", ReasonCode.ASKED_FOR_PERSON)
        active = state.active_intent
        if active is not None:
            if self.leaves_form(parse):
                if confident and self.stop_like(name):
                    return Decision("cancel", active, "the customer dropped the form", ReasonCode.FORM_DROPPED)
                return Decision("cancel", active, "the customer left the form", ReasonCode.FORM_LEFT)
            if confident and spec is not None and spec.chitchat:
                return Decision("chitchat", name, "small talk during a form", ReasonCode.SMALL_TALK)
            if confident and spec is not None and spec.retrieve:
                return Decision("retrieve", name, f"a question during {active}", ReasonCode.QUESTION)
            if confident and spec is not None and name not in REPLY_INTENTS and name != active:
                return Decision("switch", name, f"new request during {active}", ReasonCode.TOPIC_SWITCH)
            if parse.out_of_scope and _a_sentence(parse.text) and not self._fits_asked_slot(state, parse):
                return Decision("retrieve", name, f"out of scope during {active}", ReasonCode.OUT_OF_SCOPE_IN_FORM)
            return Decision("fill_slot", active, "answer to the slot asked", ReasonCode.SLOT_ANSWER)
        if confident and spec is not None:
            if spec.chitchat:
                return Decision("chitchat", name, code=ReasonCode.SMALL_TALK)
            if spec.retrieve:
                return Decision("retrieve", name, "a question for the Q&A index", ReasonCode.QUESTION)
            if self.stop_like(name) and name not in REPLY_INTENTS:  # "no" outside a form may still correct
                if self.domain.template_name(name):
                    return Decision("chitchat", name, "nothing to stop", ReasonCode.NOTHING_TO_STOP)
                return Decision("fallback", name, code=ReasonCode.NOTHING_TO_STOP)
            if name in REPLY_INTENTS and not self.domain.template_name(name):
                return Decision("fill_slot", None, "a value or correction with no question pending",
                                ReasonCode.VALUE_WITHOUT_QUESTION)
            return Decision("start", name, code=ReasonCode.INTENT_RECOGNISED)
        if parse.out_of_scope:
            return Decision("retrieve", name, "out of scope", ReasonCode.OUT_OF_SCOPE)
        return Decision("retrieve", name, f"low confidence {parse.intent.confidence:.2f}", ReasonCode.LOW_CONFIDENCE)

    def _fits_asked_slot(self, state: SessionState, parse: ParseResult) -> bool:
        """Whether the message holds a valid value for the slot asked (an entity, or the bare reply)."""
        asked = state.requested_slot
        spec = self.domain.slots.get(asked) if asked else None
        if spec is None:
            return False
        value = from_entities(asked, spec, parse.entities)
        if value is None:
            value = from_bare_reply(spec, parse.text)
        return validate(asked, spec, value).ok


def _a_sentence(text: str) -> bool:
    """Three words of letters or more in a message of ordinary length: a question or remark of its own, not a
    (mistyped) value like "1234" or "abc-12", nor a huge paste (refused as a value for its length)."""
    if len(text) > 500:
        return False
    return sum(1 for word in text.split() if sum(c.isalpha() for c in word) >= 2) >= 3
