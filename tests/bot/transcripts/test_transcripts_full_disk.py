"""A full disk under the transcript log during a conversation: the customer is answered, the terminal gets one
line (no traceback between the bot's lines), and the log reads again once there is room."""

from __future__ import annotations

import asyncio
import errno
import io
import logging
import os
from pathlib import Path

from bot.dialogue import DialogueManager
from bot.domain import load_domain
from bot.messages import Message
from bot.sessions import MemorySessionStore
from bot.transcripts import TranscriptsConfig, create_sink
from bot.understanding import Understander
from csbot.transcripts import SkippedLine, iter_turns
from nlu.schema import IntentScore, ParseResult

REPO = Path(__file__).resolve().parents[3]
PAYMENT_TEXT = "We accept Visa, Mastercard, American Express, PayPal, Apple Pay and Klarna (pay in 30 days)."


class PaymentQuestions(Understander):
    """Every message asks how to pay."""

    async def parse(self, text: str) -> ParseResult:
        top = IntentScore("payment_methods", 0.95)
        return ParseResult(text, top, [top], [], False)


class FullDisk:
    """``os.write`` for one file: writes half of the first call's bytes, then fails with ENOSPC, while ``full``."""

    def __init__(self, path: Path) -> None:
        self.path, self.full, self.torn = str(path), False, False
        self.real_write = os.write

    def __call__(self, fd: int, data: bytes) -> int:
        if self.full and os.readlink(f"/proc/self/fd/{fd}") == self.path:
            if not self.torn:
                self.torn = True
                return self.real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.real_write(fd, data)


def test_a_full_disk_costs_no_reply_and_prints_one_line_without_a_traceback(tmp_path, monkeypatch):
    path = tmp_path / "logs" / "t.jsonl"
    disk = FullDisk(path)
    monkeypatch.setattr(os, "write", disk)
    terminal = io.StringIO()  # stderr of ``csbot chat``: the CLI's logging.basicConfig, at WARNING
    handler = logging.StreamHandler(terminal)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.WARNING)

    async def conversation() -> tuple[list[str], str]:
        sink = create_sink(TranscriptsConfig(), path)  # as the chat builds it: a queue before a tee of the log
        manager = DialogueManager(load_domain(REPO / "configs" / "demo" / "domain.yml"), PaymentQuestions(),
                                  MemorySessionStore(), transcripts=sink)
        await sink.start()
        replies = []

        async def say(text: str) -> None:
            reply = await manager.handle(Message("s1", text, "repl"))
            replies.append(reply.text)
            await sink.flush()

        await say("how can I pay?")
        disk.full = True
        await say("and by card?")  # half its line reaches the disk, then ENOSPC
        await say("paypal?")
        during = terminal.getvalue()
        disk.full = False
        await say("klarna?")
        await sink.close()
        return replies, during

    try:
        replies, during = asyncio.run(conversation())
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert replies == [PAYMENT_TEXT] * 4  # the customer never noticed
    [line] = during.splitlines()  # one line for the whole outage, not one per turn, and no traceback
    assert "No space left on device" in line and str(path) in line
    assert "Traceback" not in terminal.getvalue()
    skipped: list[SkippedLine] = []
    assert [t.turn for t in iter_turns(path, on_skip=skipped.append)] == [1, 4]  # the log reads again
    assert [(s.path, s.line) for s in skipped] == [(path, 2)]  # the half line, reported
