"""What flows through a turn (DESIGN.md): the customer's :class:`Message` in, the bot's :class:`Reply` out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.turns import TurnDetails

#: Lone UTF-16 surrogates: what undecodable bytes become (``surrogateescape``) and what a JSON ``"\udc80"``
#: escape gives. No UTF-8 encoder, tokenizer or Redis client takes them.
_SURROGATES = re.compile("[\ud800-\udfff]")


def safe_text(text: str | bytes | None) -> str:
    """``text`` made safe to encode anywhere: each lone surrogate becomes U+FFFD (one character for one, so
    character offsets into the text stay valid); bytes are decoded as UTF-8, undecodable ones replaced;
    None (a channel that sent no text) is ""."""
    if isinstance(text, (bytes, bytearray)):
        return bytes(text).decode("utf-8", "replace")
    if not isinstance(text, str):
        return "" if text is None else str(text)
    try:
        text.encode("utf-8")  # the quick test: only a surrogate fails it
    except UnicodeEncodeError:
        return _SURROGATES.sub("\ufffd", text)
    return text


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
    """One bubble of a reply: text, optional buttons, and optionally an image URL, an attachment (a URL or the
    channel's own object) and custom JSON for channels that show them."""

    text: str
    buttons: list[Button] = field(default_factory=list)
    image: str | None = None
    attachment: str | dict[str, Any] | None = None
    custom: dict[str, Any] | None = None

    @property
    def empty(self) -> bool:
        """Nothing to send: no text, buttons, image, attachment or custom data."""
        return not (self.text or self.buttons or self.image or self.attachment or self.custom)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text}
        if self.buttons:
            out["buttons"] = [b.to_dict() for b in self.buttons]
        for name in ("image", "attachment", "custom"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
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
