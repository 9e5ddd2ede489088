"""What flows through a turn (DESIGN.md): the customer's :class:`Message` in, the bot's :class:`Reply` out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.turns import TurnDetails


@dataclass
class Message:
    """One customer message as a channel hands it to the dialogue manager.

    ``recipient_id`` is where replies go on ``channel`` (a chat id, a user id, a callback address): the
    session remembers it, so a reply can be sent later too (a hand-over, an agent's message). When the
    channel gives none, it is the session id.
    """

    session_id: str
    text: str
    channel: str = "api"
    metadata: dict[str, Any] = field(default_factory=dict)
    recipient_id: str | None = None

    def __post_init__(self) -> None:
        if self.recipient_id is None:
            self.recipient_id = self.session_id


@dataclass
class Button:
    """A quick reply: ``title`` is shown, ``payload`` is sent back as the next message's text when clicked."""

    title: str
    payload: str

    def to_dict(self) -> dict[str, str]:
        return {"title": self.title, "payload": self.payload}


@dataclass
class OutgoingMessage:
    """One bubble of a reply: text and optional buttons."""

    text: str
    buttons: list[Button] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text}
        if self.buttons:
            out["buttons"] = [b.to_dict() for b in self.buttons]
        return out


@dataclass
class Reply:
    """The bot's answer to one message. ``source`` names the decision that produced it (template,
    ask_slot, retrieve, clarify, handoff, fallback, error, silent); ``handoff`` is set when a person takes over."""

    messages: list[OutgoingMessage]
    source: str
    handoff: bool = False
    #: What led to the reply (intent, confidence, entities, decision, slots, hits, timings, versions): for
    #: /debug, conversation tests and logs; not part of what a channel sends.
    details: TurnDetails = field(default_factory=TurnDetails)

    def to_dict(self) -> dict[str, Any]:
        return {"messages": [m.to_dict() for m in self.messages], "source": self.source, "handoff": self.handoff}

    @property
    def text(self) -> str:
        """All bubbles' text, one per line (for logs and tests)."""
        return "\n".join(m.text for m in self.messages)
