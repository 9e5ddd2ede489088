"""The policy: given the session and the parse of a message, what kind of move the bot makes next."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.domain.schema import Domain
from bot.sessions.state import SessionState
from bot.turns import Move, ReasonCode

if TYPE_CHECKING:
    from nlu.schema import ParseResult

#: Intents that carry values or answers rather than a request of their own.
REPLY_INTENTS = frozenset({"inform", "affirm", "deny"})
#: Intents that drop what is in progress (and say "no" to a confirmation).
STOP_INTENTS = frozenset({"stop", "cancel", "nevermind", "never_mind"})
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

    def confident(self, parse: ParseResult) -> bool:
        """Whether the parse is sure enough to act on: in scope, and the intent's confidence at least
        :meth:`intent_threshold`. The dialogue manager asks this too (a yes or no at a confirmation is taken
        from the intent only when confident)."""
        return not parse.out_of_scope and parse.intent.confidence >= self.intent_threshold(parse)
