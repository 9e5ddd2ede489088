"""The policy: given the session and the parse of a message, what kind of move the bot makes next."""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.domain.schema import Domain
from bot.sessions.state import SessionState
from bot.turns import Move, ReasonCode

if TYPE_CHECKING:
    from nlu.schema import ParseResult

#: Intents that carry values or answers rather than a request of their own.
REPLY_INTENTS = frozenset({"inform", "affirm", "deny"})
#: Intents that drop what is in progress (and say "no" to a confirmation) when the domain does not say otherwise
#: (``leaves_form`` on the intent): the names bots trained on other frameworks' data use too (Rasa's ``deny``).
STOP_INTENTS = frozenset({"stop", "cancel", "nevermind", "never_mind", "deny", "abort", "quit", "exit",
                          "stop_form", "cancel_form", "no_thanks", "forget_it"})
#: Words that leave a form whatever the intent model made of them ("wait no, never mind").
LEAVE_PHRASES = re.compile(r"\b(?:never\s?mind|nevermind|forget (?:it|about it)|no,? thanks?(?: you)?|don'?t bother|"
                           r"i(?:'ve| have)? changed my mind|leave it|stop (?:it|this|that)|let'?s stop)\b", re.IGNORECASE)
#: The intent threshold when neither the domain nor the model sets one.
DEFAULT_INTENT_THRESHOLD = 0.5


@dataclass
class Decision:
    """A move, the intent it concerns, why as a :class:`~bot.turns.ReasonCode` (what code reads) and why in
    prose (``reason``: for people, the transcript and the hand-over hook)."""

    move: Move
    intent: str | None = None
    reason: str = ""
    code: ReasonCode = ReasonCode.UNSPECIFIED


class Policy(abc.ABC):
    """Decides the next move; thresholds come from the domain. Replaceable by name in the domain file."""

    def __init__(self, domain: Domain) -> None:
        self.domain = domain

    @abc.abstractmethod
    def decide(self, state: SessionState, parse: ParseResult) -> Decision:
        """The move for this message in this session."""

    def intent_threshold(self, parse: ParseResult) -> float:
        """The confidence ``parse``'s intent needs: its own ``threshold`` in the domain, else the domain's
        ``thresholds.intent``, else the one the model chose on dev when trained, else 0.5."""
        spec = self.domain.intents.get(parse.intent.name)
        for threshold in (spec.threshold if spec is not None else None, self.domain.thresholds.intent,
                          getattr(parse, "threshold", None)):
            if threshold is not None:
                return float(threshold)
        return DEFAULT_INTENT_THRESHOLD

    def stop_like(self, intent: str) -> bool:
        """Whether ``intent`` drops what is in progress: its ``leaves_form`` in the domain, else the built-in list."""
        spec = self.domain.intents.get(intent)
        if spec is not None and spec.leaves_form is not None:
            return spec.leaves_form
        return intent in STOP_INTENTS

    def leaves_form(self, parse: ParseResult) -> bool:
        """Whether the message leaves the form in progress: a confident stop-like intent, or words like "never
        mind" or "no thanks" unless the message is a confident request of its own ("never mind, track 48213")."""
        name = parse.intent.name
        confident = self.confident(parse)
        if confident and self.stop_like(name):
            return True
        if not LEAVE_PHRASES.search(parse.text[:500]):
            return False
        spec = self.domain.intents.get(name)
        request = confident and spec is not None and not spec.chitchat and name not in REPLY_INTENTS
        return not request

    def confident(self, parse: ParseResult) -> bool:
        """Whether the parse is sure enough to act on: in scope, and the intent's confidence at least
        :meth:`intent_threshold`. The dialogue manager asks this too (a yes or no at a confirmation is taken
        from the intent only when confident)."""
        return not parse.out_of_scope and parse.intent.confidence >= self.intent_threshold(parse)
