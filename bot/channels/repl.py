"""The terminal channel: ``csbot chat``. Rich output, numbered buttons, slash commands, line editing.

Piped input (no terminal) is read line by line and answered the same way, so the REPL is scriptable.
Each line is read in a daemon thread, so the event loop (Redis connections, the transcript writer) keeps
running while the customer types, and Ctrl-C never waits for a half-typed line.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, ClassVar

from bot.channels.base import InputChannel, OnMessage, OutputChannel
from bot.messages import Button, Message, Reply

if TYPE_CHECKING:
    from rich.console import Console

HELP = """Commands:
  /debug   show intent, confidence, slots, decision, retrieval hits and latency after each reply (toggle)
  /reset   start a new conversation
  /session show this conversation's session id
  /help    this help
  /quit    leave (Ctrl-D and Ctrl-C too)
A number picks one of the buttons offered in the last reply."""


class ReplOutput(OutputChannel):
    """Prints the bot's messages in the terminal; buttons become numbered lines the customer can pick."""

    name: ClassVar[str] = "repl"

    def __init__(self, console: Console) -> None:
        self.console = console
        self.buttons: list[Button] = []

    async def send_text(self, recipient_id: str, text: str) -> None:
        from rich.markup import escape

        self.console.print(f"[bold green]bot>[/bold green] {escape(text)}")

    async def send_buttons(self, recipient_id: str, text: str, buttons: list[Button]) -> None:
        from rich.markup import escape

        await self.send_text(recipient_id, text)
        for button in buttons:
            self.buttons.append(button)
            self.console.print(f"     [cyan]{len(self.buttons)}.[/cyan] {escape(button.title)}")


class ReplChannel(InputChannel):
    """Reads customer lines from the terminal (or a pipe) and hands each to the bot."""

    name: ClassVar[str] = "repl"

    def __init__(self, console: Console, title: str = "csbot", interactive: bool | None = None,
                 session_id: str | None = None,
                 reset: Callable[[str], Awaitable[None]] | None = None, about: str = "") -> None:
        self.console = console
        self.title = title
        self.about = about
        self.interactive = sys.stdin.isatty() if interactive is None else interactive
        self.session_id = session_id or _new_session()
        self.reset = reset
        self.debug = False
        self.output = ReplOutput(console)

    def output_channel(self) -> ReplOutput:
        return self.output

    async def serve(self, on_message: OnMessage) -> None:
        """Read, answer and show lines until the customer leaves (/quit, Ctrl-D, end of the piped input).

        A line that is not valid in the terminal's encoding is read with the bad bytes replaced (U+FFFD),
        not taken for the end of the input.
        """
        from rich.markup import escape

        if getattr(sys.stdin, "errors", None) == "strict" and hasattr(sys.stdin, "reconfigure"):
            sys.stdin.reconfigure(errors="replace")

        if self.interactive:
            self.console.print(f"[bold]{escape(self.title)}[/bold] — type [cyan]/help[/cyan] for commands, "
                               "[cyan]/quit[/cyan] to leave.")
            if self.about:
                self.console.print(f"[dim]{escape(self.about)}[/dim]")
            self.console.print(f"[dim]session {escape(self.session_id)} (csbot chat --session {escape(self.session_id)} "
                               "continues it, with a Redis session store)[/dim]", soft_wrap=True)
        while True:
            line = await self._read()
            if line is None:
                if self.interactive:
                    self.console.print("\nbye")
                return
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):
                if await self._command(line):
                    return
                continue
            buttons = self.output.buttons
            # isdecimal, not isdigit: int() refuses "²", and a short line only (int() refuses 5,000 digits)
            if buttons and line.isdecimal() and len(line) <= 3 and 1 <= int(line) <= len(buttons):
                line = buttons[int(line) - 1].payload
            self.output.buttons = []
            reply = await on_message(Message(self.session_id, line, self.name), self.output)
            self._after(reply)

    async def _read(self) -> str | None:
        """The next line, or None at the end of input; read in a daemon thread (see the module docstring)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[str | None] = loop.create_future()

        def answer(value: str | None) -> None:
            if not done.done():
                done.set_result(value)

        def read() -> None:
            try:
                value = self._read_line()
            except (EOFError, KeyboardInterrupt, OSError, ValueError):
                value = None
            try:
                loop.call_soon_threadsafe(answer, value)
            except RuntimeError:  # the loop closed while the customer was typing
                pass

        threading.Thread(target=read, name="repl-input", daemon=True).start()
        return await done

    def _read_line(self) -> str | None:
        if self.interactive:
            try:
                import readline  # noqa: F401 - line editing and history for input()
            except ImportError:
                pass
            return input("you> ")
        line = sys.stdin.readline()
        return None if line == "" else line.rstrip("\n")

    async def _command(self, line: str) -> bool:
        """Run a slash command; True when the customer leaves."""
        from rich.markup import escape

        command = line.split()[0].lower()
        if command in ("/quit", "/exit", "/q"):
            return True
        if command == "/help":
            self.console.print(HELP)
        elif command == "/session":
            self.console.print(f"session {escape(self.session_id)}")
        elif command == "/debug":
            self.debug = not self.debug
            self.console.print(f"debug {'on' if self.debug else 'off'}")
        elif command == "/reset":
            if self.reset is not None:
                await self.reset(self.session_id)
            self.session_id = _new_session()
            self.output.buttons = []
            self.console.print(f"(new conversation: session {escape(self.session_id)})")
        else:
            self.console.print(f"unknown command {command}; /help lists them")
        return False

    def _after(self, reply: Reply) -> None:
        """What the terminal shows besides the messages: the hand-over notice and, with /debug, the details."""
        if reply.handoff and reply.source == "handoff":
            self.console.print("[dim](handed over to a person: the bot stays silent until an agent releases "
                               "the conversation; /reset starts a new one)[/dim]")
        if self.debug:
            self._show_debug(reply)

    def _show_debug(self, reply: Reply) -> None:
        from rich.markup import escape

        d = reply.details
        entities = ", ".join(f"{e.entity}={e.value!r}" for e in d.entities) or "none"
        hits = "; ".join(f"{h.score or 0:.2f} {h.question}" for h in d.hits[:3]) or "none"
        self.console.print(
            f"[dim]  intent {d.intent} {d.confidence}; out of scope {d.out_of_scope}; "
            f"entities {escape(entities)}\n  decision {escape(d.decision.code)}: {escape(d.decision.note)} "
            f"-> {reply.source}; slots {escape(str(d.slots))}; asking {d.requested_slot}\n"
            f"  hits {escape(hits)}\n  {d.timings.total_ms} ms in the manager; "
            f"model {escape(d.versions.model or '-')}, index {escape(d.versions.index or '-')}[/dim]"
        )


def _new_session() -> str:
    return f"repl-{uuid.uuid4().hex[:8]}"


__all__ = ["HELP", "ReplChannel", "ReplOutput"]
