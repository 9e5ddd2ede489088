"""One turn in progress: the session's state, what the bot says, and why. Shared by the manager and the
parts it builds (forms, answers, hand-over); not part of the package's public names."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.domain.schema import Domain
from bot.messages import OutgoingMessage
from bot.render import Renderer
from bot.sessions.state import SessionState
from bot.turns import HitSummary, Move, ReasonCode, SystemMove, TurnDecision

if TYPE_CHECKING:
    from bot.understanding import Retriever


class Turn:
    """What one turn accumulates: the messages, their source, the decision, the hits and the flags.

    ``state`` is the session's state, loaded under its lock and saved when the turn ends.
    """

    def __init__(self, state: SessionState, domain: Domain, renderer: Renderer) -> None:
        self.state = state
        self.domain = domain
        self.renderer = renderer
        self.messages: list[OutgoingMessage] = []
        self.source = "fallback"
        self.decision = TurnDecision("fallback", ReasonCode.UNSPECIFIED)
        self.hits: list[HitSummary] = []
        self.handoff = False
        #: the intent completed this turn and the slots it was completed with
        self.completed: str | None = None
        self.completed_slots: dict[str, Any] = {}
        self.retrieval_ms: float | None = None
        #: the Q&A index this turn searches (the one current when the turn started)
        self.retriever: Retriever | None = None

    def decide(self, move: Move | SystemMove, code: ReasonCode, note: str = "") -> None:
        """Start the turn's decision afresh (later steps refine it with ``decision.because``)."""
        self.decision = TurnDecision(move, code, note)

    def say(self, template: str, variables: dict[str, Any] | None = None) -> OutgoingMessage:
        """Add a message rendered from ``template``; returned so buttons can be attached."""
        message = self.renderer.render(template, self.state, variables)
        self.messages.append(message)
        return message

    def say_text(self, text: str, variables: dict[str, Any] | None = None) -> None:
        """Add a message from a literal template text (an invalid value's reason)."""
        self.messages.append(self.renderer.text(text, self.state, variables))

    def ask(self, slot: str) -> None:
        """Ask for ``slot`` with its prompt, and remember it is the slot asked."""
        self.state.requested_slot = slot
        self.say_text(self.domain.slots[slot].prompt, {"slot": slot})
