"""The terminal channel: ``csbot chat``. Rich output, numbered buttons, slash commands, line editing.

Piped input (no terminal) is read line by line and answered the same way, so the REPL is scriptable.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import TYPE_CHECKING, Any

from bot.messages import Message, Reply

if TYPE_CHECKING:
    from rich.console import Console

    from bot.dialogue import DialogueManager

HELP = """Commands:
  /debug   show intent, confidence, slots, decision, retrieval hits and latency after each reply (toggle)
  /reset   start a new conversation
  /help    this help
  /quit    leave (Ctrl-D and Ctrl-C too)
A number picks one of the buttons offered in the last reply."""


class Repl:
    """Reads customer lines, sends them through the dialogue manager, prints the replies."""

    def __init__(self, manager: DialogueManager, console: Console, interactive: bool | None = None,
                 session_id: str | None = None) -> None:
        self.manager = manager
        self.console = console
        self.interactive = sys.stdin.isatty() if interactive is None else interactive
        self.session_id = session_id or f"repl-{uuid.uuid4().hex[:8]}"
        self.debug = False
        self.buttons: list[Any] = []

    def _read(self) -> str | None:
        if self.interactive:
            try:
                import readline  # noqa: F401 - line editing and history for input()
            except ImportError:
                pass
            return input("you> ")
        line = sys.stdin.readline()
        return None if line == "" else line.rstrip("\n")

    def run(self, runner: asyncio.Runner | None = None) -> int:
        """The loop; returns the exit code (0 after /quit, Ctrl-D or Ctrl-C).

        ``runner`` is the event loop the bot was started on; without one the REPL makes its own.
        """
        if self.interactive:
            self.console.print("[bold]Northwind Shop assistant[/bold] — type [cyan]/help[/cyan] for commands, "
                               "[cyan]/quit[/cyan] to leave.")
        if runner is None:
            with asyncio.Runner() as own:
                return self._loop(own)
        return self._loop(runner)

    def _loop(self, runner: asyncio.Runner) -> int:
        """Read, answer and show lines until the customer leaves."""
        while True:
            try:
                line = self._read()
            except (EOFError, KeyboardInterrupt):
                line = None
            if line is None:
                if self.interactive:
                    self.console.print("\nbye")
                return 0
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):
                if self._command(line, runner):
                    return 0
                continue
            if line.isdigit() and self.buttons and 1 <= int(line) <= len(self.buttons):
                line = self.buttons[int(line) - 1].payload
            try:
                reply = runner.run(self.manager.handle(Message(self.session_id, line, "repl")))
            except KeyboardInterrupt:
                self.console.print("\nbye")
                return 0
            self._show(reply)
            if self.debug:
                self._show_debug(reply)

    def _command(self, line: str, runner: asyncio.Runner) -> bool:
        command = line.split()[0].lower()
        if command in ("/quit", "/exit", "/q"):
            return True
        if command == "/help":
            self.console.print(HELP)
        elif command == "/debug":
            self.debug = not self.debug
            self.console.print(f"debug {'on' if self.debug else 'off'}")
        elif command == "/reset":
            runner.run(self.manager.reset(self.session_id))
            self.session_id = f"repl-{uuid.uuid4().hex[:8]}"
            self.buttons = []
            self.console.print("(new conversation)")
        else:
            self.console.print(f"unknown command {command}; /help lists them")
        return False

    def _show(self, reply: Reply) -> None:
        from rich.markup import escape

        self.buttons = []
        for message in reply.messages:
            self.console.print(f"[bold green]bot>[/bold green] {escape(message.text)}")
            for button in message.buttons:
                self.buttons.append(button)
                self.console.print(f"     [cyan]{len(self.buttons)}.[/cyan] {escape(button.title)}")
        if reply.handoff and reply.source == "handoff":
            self.console.print("[dim](handed over to a person: the bot stays silent until an agent releases "
                               "the conversation; /reset starts a new one)[/dim]")

    def _show_debug(self, reply: Reply) -> None:
        from rich.markup import escape

        d = reply.details
        entities = ", ".join(f"{e['entity']}={e['value']!r}" for e in d.get("entities", [])) or "none"
        hits = "; ".join(f"{h.get('score', 0):.2f} {h['question']}" for h in d.get("hits", [])[:3]) or "none"
        self.console.print(
            f"[dim]  intent {d.get('intent')} {d.get('confidence')}; out of scope {d.get('out_of_scope')}; "
            f"entities {escape(entities)}\n  decision {escape(str(d.get('decision')))} -> {reply.source}; "
            f"slots {escape(str(d.get('slots')))}; asking {d.get('requested_slot')}\n"
            f"  hits {escape(hits)}\n  {d.get('latency_ms')} ms in the manager[/dim]"
        )
