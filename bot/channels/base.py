"""The channel contract: how a platform's messages reach the bot and how the bot's messages reach it.

An :class:`InputChannel` turns a platform's request (a terminal line, a webhook body) into a
:class:`~bot.messages.Message` and hands it to one async callback, :data:`OnMessage`, together with the
:class:`OutputChannel` its replies go to. An output channel needs only :meth:`OutputChannel.send_text`;
buttons (and anything richer, later) fall back to text where a platform has none. The bot can also send
to a conversation later, outside any request (hand-over, an agent's message): the app keeps each
channel's output side by name, and each session remembers its channel and recipient.

:class:`CollectingOutputChannel` just records what was sent: the stories runner and the tests use it,
and so will request/response channels such as REST.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from bot.messages import Button, Message, OutgoingMessage, Reply

#: The one callback every input channel hands its messages to: the message, and where replies go.
OnMessage = Callable[[Message, "OutputChannel"], Awaitable[Reply]]


class OutputChannel(abc.ABC):
    """Sends the bot's messages to one platform; only :meth:`send_text` is required."""

    #: The channel's name, as messages and sessions record it (``repl``, ``rest``, ``slack`` ...).
    name: ClassVar[str] = "output"

    @abc.abstractmethod
    async def send_text(self, recipient_id: str, text: str) -> None:
        """Send one plain text message to ``recipient_id``."""

    async def send_buttons(self, recipient_id: str, text: str, buttons: list[Button]) -> None:
        """Text with quick replies; without native buttons, the titles become numbered lines of the text."""
        lines = [text, *(f"{number}. {button.title}" for number, button in enumerate(buttons, start=1))]
        await self.send_text(recipient_id, "\n".join(line for line in lines if line))

    async def send_message(self, recipient_id: str, message: OutgoingMessage) -> None:
        """One bubble: buttons when it has some, plain text otherwise; an image or attachment URL follows the
        text as a link (a channel that shows them overrides this); custom data is for channels that know it."""
        text = "\n".join(part for part in (message.text, *_links(message)) if part)
        if message.buttons:
            await self.send_buttons(recipient_id, text, message.buttons)
        elif text:
            await self.send_text(recipient_id, text)

    async def send_reply(self, recipient_id: str, reply: Reply) -> None:
        """Every bubble of a reply, in order."""
        for message in reply.messages:
            await self.send_message(recipient_id, message)


def _links(message: OutgoingMessage) -> list[str]:
    """The image and attachment of a message as URLs to show after its text (an attachment object has none)."""
    return [url for url in (message.image, message.attachment) if isinstance(url, str)]


@dataclass
class SentMessage:
    """What a :class:`CollectingOutputChannel` recorded: recipient, text and buttons of one bubble, and its
    image, attachment and custom data."""

    recipient_id: str
    text: str
    buttons: list[Button] = field(default_factory=list)
    image: str | None = None
    attachment: str | dict[str, Any] | None = None
    custom: dict[str, Any] | None = None


class CollectingOutputChannel(OutputChannel):
    """Records every message instead of sending it (stories, tests, request/response channels)."""

    name: ClassVar[str] = "collector"

    def __init__(self) -> None:
        self.messages: list[SentMessage] = []

    async def send_text(self, recipient_id: str, text: str) -> None:
        self.messages.append(SentMessage(recipient_id, text))

    async def send_buttons(self, recipient_id: str, text: str, buttons: list[Button]) -> None:
        self.messages.append(SentMessage(recipient_id, text, list(buttons)))

    async def send_message(self, recipient_id: str, message: OutgoingMessage) -> None:
        """Records the whole bubble: text, buttons, image, attachment and custom data."""
        self.messages.append(SentMessage(recipient_id, message.text, list(message.buttons), message.image,
                                         message.attachment, message.custom))

    def take(self) -> list[SentMessage]:
        """The messages recorded so far, emptying the record."""
        taken, self.messages = self.messages, []
        return taken


class InputChannel(abc.ABC):
    """Receives a platform's messages, turns each into a :class:`Message` and hands it to ``on_message``."""

    #: The name messages from this channel carry, and the config key that enables it.
    name: ClassVar[str] = "input"

    @abc.abstractmethod
    def output_channel(self) -> OutputChannel:
        """Where replies and later messages for this channel's conversations go."""

    @abc.abstractmethod
    async def serve(self, on_message: OnMessage) -> None:
        """Receive messages until the channel is closed, handing each to ``on_message``."""


__all__ = ["CollectingOutputChannel", "InputChannel", "OnMessage", "OutputChannel", "SentMessage"]
