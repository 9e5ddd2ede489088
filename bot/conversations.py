"""Helpers of :class:`~bot.app.BotApp` for conversations a person takes over: the hand-over hook that lists
them, reading a conversation's transcript back, and the transcript turns of an agent's message and of a
reply that could not be delivered.

:func:`read_transcript` reads from the Redis transcript stream when the bot's sink has one (every worker's
turns, a recent window), else from the JSONL log (the complete record), else nothing. The text of the
message being answered is kept in a context variable by ``BotApp.handle`` (:data:`CURRENT_TEXT`), so the
hand-over hook, called inside the turn, knows the customer's last message before it is saved.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import TYPE_CHECKING, Any, TypeVar

from bot.messages import OutgoingMessage, Reply
from bot.sessions.handoffs import HandoffInfo
from csbot.transcripts import TranscriptTurn

if TYPE_CHECKING:
    from bot.dialogue.handoff import HandoffHook
    from bot.sessions.state import SessionState
    from bot.transcripts.base import TranscriptSink

log = logging.getLogger(__name__)

#: The customer's text of the turn being handled in this task (set by ``BotApp.handle``), or None.
CURRENT_TEXT: contextvars.ContextVar[str | None] = contextvars.ContextVar("csbot_current_text", default=None)

#: How many earlier exchanges a hand-over notification carries.
LAST_MESSAGES = 6

Sink = TypeVar("Sink", bound="TranscriptSink")


def compose_hooks(first: HandoffHook, second: HandoffHook | None) -> HandoffHook:
    """One hand-over hook running ``first`` then ``second``; an error of ``first`` is logged and ``second``
    still runs (``second``'s own error propagates to the caller, which logs it)."""

    async def hook(state: SessionState, reason: str) -> None:
        try:
            await first(state, reason)
        except Exception as exc:  # noqa: BLE001 - the domain's hook must still run
            log.error("listing the hand-over of session %s failed: %s: %s", state.session_id,
                      exc.__class__.__name__, exc)
        if second is not None:
            await second(state, reason)

    return hook


def last_messages(state: SessionState, current: str | None) -> list[dict[str, str]]:
    """The last exchanges of a conversation as ``{"author": "customer"|"bot", "text"}``, oldest first,
    ending with ``current`` (the message being handled, not yet in the history) when given."""
    out: list[dict[str, str]] = []
    for entry in state.history[-LAST_MESSAGES:]:
        if entry.user:
            out.append({"author": "customer", "text": entry.user})
        if entry.bot:
            out.append({"author": "bot", "text": entry.bot})
    if current:
        out.append({"author": "customer", "text": current})
    return out


def handoff_info(state: SessionState, reason: str, handed_over_at: float) -> HandoffInfo:
    """What the hand-over list keeps of a conversation handed over now."""
    current = CURRENT_TEXT.get()
    last = current if current is not None else next((e.user for e in reversed(state.history) if e.user), "")
    return HandoffInfo(state.session_id, state.channel, state.recipient_id, reason, handed_over_at, last)


def find_sink(sink: TranscriptSink | None, kind: type[Sink]) -> Sink | None:
    """The first sink of type ``kind`` in ``sink``, looking through tees (``sinks``) and queues (``inner``)."""
    if sink is None:
        return None
    if isinstance(sink, kind):
        return sink
    inner = getattr(sink, "inner", None)
    if inner is not None:
        return find_sink(inner, kind)
    for each in getattr(sink, "sinks", []):
        found = find_sink(each, kind)
        if found is not None:
            return found
    return None


async def read_transcript(sink: TranscriptSink | None, session_id: str) -> tuple[str, list[TranscriptTurn]]:
    """``(where, turns)``: the session's turns oldest first from the Redis stream (``"redis"``), else the JSONL
    log (``"jsonl"``), else ``("none", [])``. Queued turns are written first."""
    from bot.transcripts.background import BackgroundSink
    from bot.transcripts.jsonl import JsonlTranscriptLog
    from bot.transcripts.redis_stream import RedisTranscriptStream
    from csbot.transcripts.reader import iter_turns

    queue = find_sink(sink, BackgroundSink)
    if queue is not None:
        await queue.flush()
    stream = find_sink(sink, RedisTranscriptStream)
    if stream is not None:
        return "redis", await stream.read(session_id)
    jsonl = find_sink(sink, JsonlTranscriptLog)
    if jsonl is not None:
        path = jsonl.path
        return "jsonl", await asyncio.to_thread(lambda: list(iter_turns(path, session_id)))
    return "none", []


def outgoing_turn(session_id: str, channel: str | None, messages: list[OutgoingMessage], *, turn: int = 0,
                  handoff: bool = False, author: str = "", error: Exception | None = None,
                  user_text: str = "") -> TranscriptTurn:
    """The transcript turn of messages sent to a conversation: an agent's (``author``) delivered, or, with
    ``error``, a reply (of the bot, or of an agent) that could not be delivered, with the reason."""
    who = f"agent {author}" if author else "the bot"
    if error is None:
        decision, source = f"{who} wrote to the customer", "agent" if author else "sent"
    else:
        decision, source = f"not delivered ({who}): {error}", "undelivered"
    reply: dict[str, Any] = Reply(list(messages), source, handoff).to_dict()
    return TranscriptTurn(session_id=session_id, channel=channel or "", user_text=user_text, decision=decision,
                          source=source, reply=reply, turn=turn, author=author)


__all__ = ["CURRENT_TEXT", "compose_hooks", "find_sink", "handoff_info", "last_messages", "outgoing_turn",
           "read_transcript"]
