"""The policy: given the session and the parse of a message, what kind of move the bot makes next."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from bot.domain.schema import Domain
from bot.sessions.state import SessionState

if TYPE_CHECKING:
    from nlu.schema import ParseResult

Move = Literal[
    "start",      # begin an intent: fill its slots, confirm if sensitive, run its action, answer its template
    "fill_slot",  # the message answers (or corrects) a slot of the form in progress
    "switch",     # a new intent in the middle of a form: put the form aside, start the new one
    "cancel",     # the customer drops the form in progress
    "chitchat",   # greeting, thanks...: answer without touching the form
    "retrieve",   # search past answers
    "handoff",    # a person takes over
    "fallback",   # ask to rephrase
]


@dataclass
class Decision:
    """A move, the intent it concerns and why (kept in the transcript)."""

    move: Move
    intent: str | None = None
    reason: str = ""


class Policy(abc.ABC):
    """Decides the next move; thresholds come from the domain. Replaceable by name in the domain file."""

    def __init__(self, domain: Domain) -> None:
        self.domain = domain

    @abc.abstractmethod
    def decide(self, state: SessionState, parse: ParseResult) -> Decision:
        """The move for this message in this session."""
