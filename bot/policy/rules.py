"""The default policy: a few ordered rules over the intent's confidence, the form in progress and the domain."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.policy.base import Decision, Policy
from bot.sessions.state import SessionState

if TYPE_CHECKING:
    from nlu.schema import ParseResult

#: Intents that carry values or answers rather than a request of their own.
REPLY_INTENTS = frozenset({"inform", "affirm", "deny"})
STOP_INTENTS = frozenset({"stop", "cancel", "nevermind", "never_mind"})


class RulePolicy(Policy):
    """Rules, first match wins:

    1. a confident hand-over intent (a request for a person, a complaint) hands over;
    2. with a form in progress: a confident stop cancels it, chit-chat and questions for the Q&A index are
       answered beside it (the slot is asked again), a confident other request switches topic, anything
       else is taken as the answer to the slot asked;
    3. otherwise: chit-chat and intents with templates, slots or actions start; intents marked as
       questions, out-of-scope messages and low confidence go to retrieval; bare replies with no
       question pending fall back.
    """

    def confident(self, parse: ParseResult) -> bool:
        name = parse.intent.name
        spec = self.domain.intents.get(name)
        threshold = spec.threshold if spec is not None and spec.threshold is not None else self.domain.thresholds.intent
        return not parse.out_of_scope and parse.intent.confidence >= threshold

    def decide(self, state: SessionState, parse: ParseResult) -> Decision:
        name = parse.intent.name
        spec = self.domain.intents.get(name)
        confident = self.confident(parse)
        if confident and spec is not None and spec.handoff:
            return Decision("handoff", name, "the customer asked for a person" if name != "complaint" else "complaint")
        if state.active_intent is not None:
            if confident and name in STOP_INTENTS:
                return Decision("cancel", state.active_intent, "the customer dropped the form")
            if confident and spec is not None and spec.chitchat:
                return Decision("chitchat", name, "small talk during a form")
            if confident and spec is not None and spec.retrieve:
                return Decision("retrieve", name, f"a question during {state.active_intent}")
            if confident and spec is not None and name not in REPLY_INTENTS and name != state.active_intent:
                return Decision("switch", name, f"new request during {state.active_intent}")
            return Decision("fill_slot", state.active_intent, "answer to the slot asked")
        if confident and spec is not None:
            if spec.chitchat:
                return Decision("chitchat", name)
            if spec.retrieve:
                return Decision("retrieve", name, "a question for the Q&A index")
            if name in STOP_INTENTS:
                return Decision("chitchat", name, "nothing to stop") if self.domain.template_name(name) else Decision("fallback", name)
            if name in REPLY_INTENTS and not self.domain.template_name(name):
                return Decision("fill_slot", None, "a value or correction with no question pending")
            return Decision("start", name)
        reason = "out of scope" if parse.out_of_scope else f"low confidence {parse.intent.confidence:.2f}"
        return Decision("retrieve", name, reason)
