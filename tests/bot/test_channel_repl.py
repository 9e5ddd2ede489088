"""The terminal channel shows the conversation's session id (at start, on /session, and after /reset)."""

from __future__ import annotations

import asyncio
import io

from rich.console import Console

from bot.channels.repl import ReplChannel
from bot.messages import OutgoingMessage, Reply


def _run(lines, session_id=None):
    buffer = io.StringIO()
    channel = ReplChannel(Console(file=buffer, width=200), title="Test bot", interactive=True, session_id=session_id)
    script = iter(lines)
    channel._read_line = lambda: next(script, None)
    seen = []

    async def on_message(message, output):
        seen.append(message.session_id)
        return Reply([OutgoingMessage("hello")], "template")

    asyncio.run(channel.serve(on_message))
    return buffer.getvalue(), channel, seen


def test_the_repl_shows_its_session_id_at_start():
    out, _, _ = _run(["/quit"], session_id="shopper-7")
    assert "session shopper-7" in out and "--session shopper-7" in out


def test_a_new_conversation_shows_its_new_session_id():
    out, channel, seen = _run(["/session", "/reset", "hi", "/quit"])
    first = out.split("session ", 1)[1].split()[0]
    assert first.startswith("repl-")
    assert seen == [channel.session_id] and channel.session_id != first
    assert f"(new conversation: session {channel.session_id})" in out
