"""``csbot transcripts ...``: read the transcript log, one conversation or the latest turns live, and export
turns for review (``export``, see :mod:`training.review`).

A torn or corrupt line of the log (a crash or a full disk mid-write) never stops either command: it is
skipped, and a note on stderr names it (``show``: one line after the conversation; ``tail``: a line as
each is met), so the operator knows a turn is missing.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bot.cli.options import config_option

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console
    from rich.text import Text

    from csbot.transcripts import SkippedLine, TranscriptTurn

log_option = click.option("--log", "log_path", type=click.Path(dir_okay=False), default=None,
                          help="Transcript log (default from config: transcripts.path).")
json_option = click.option("--json", "as_json", is_flag=True, help="One JSON object per turn instead of text.")


@click.group("transcripts")
def transcripts_group() -> None:
    """Read the transcript log: a whole conversation, the latest turns live, or turns to review."""


def _log_path(log_path: str | None, config_path: str | None) -> Path:
    """``--log``, else ``transcripts.path`` of the config (read once, here), resolved as the bot resolves it."""
    if log_path:
        return Path(log_path)
    from csbot.settings import load_config

    return load_config(config_path).paths.transcripts


def _require_log(path: Path) -> None:
    from csbot.errors import StoreError
    from csbot.transcripts import log_files

    if not log_files(path):
        raise StoreError(f"{path}: no transcript log here (see --log or transcripts.path in the config)")


class _SkipNotes:
    """Collects the lines a read skipped and notes them on stderr: ``live`` of them as they are met, the
    rest in one line from :meth:`finish`."""

    shown = 5  # locations a summary names

    def __init__(self, live: int = 0) -> None:
        self.live = live
        self.count = 0
        self.first: list[SkippedLine] = []

    def __call__(self, skipped: SkippedLine) -> None:
        self.count += 1
        if self.count <= self.live:
            click.echo(f"note: {skipped}", err=True)
        elif len(self.first) < self.shown:
            self.first.append(skipped)

    def finish(self) -> None:
        """One line for the skipped lines not noted yet, if any."""
        rest = self.count - min(self.count, self.live)
        if rest == 1 and self.live == 0:
            click.echo(f"note: {self.first[0]}", err=True)
        elif rest:
            where = ", ".join(f"{s.path}:{s.line}" for s in self.first)
            more = f" and {rest - len(self.first)} more" if rest > len(self.first) else ""
            again = " more" if self.live else ""
            click.echo(f"note: skipped {rest}{again} torn or corrupt lines of the transcript log: {where}{more}",
                       err=True)


def _console() -> Console:
    from rich.console import Console

    return Console(soft_wrap=True, highlight=False)


@transcripts_group.command("show")
@click.argument("session_id")
@log_option
@json_option
@config_option
def show_command(session_id: str, log_path: str | None, as_json: bool, config_path: str | None) -> None:
    """Print one conversation, turn by turn.

    Each turn shows the time, what the customer wrote, the intent and its confidence (with entities),
    the decision and its source, and the bot's reply with its buttons. Torn or corrupt lines of the log
    are skipped, with a note on stderr.
    """
    from csbot.errors import StoreError
    from csbot.transcripts import iter_turns

    path = _log_path(log_path, config_path)
    _require_log(path)
    notes = _SkipNotes()
    turns = list(iter_turns(path, session_id, on_skip=notes))
    notes.finish()
    if not turns:
        raise StoreError(f"{path}: no conversation with session id {session_id!r} (nor in its rotated files)")
    if as_json:
        for turn in turns:
            click.echo(_json_line(turn))
        return
    console = _console()
    first, end = turns[0], turns[-1]
    console.print(_header(session_id, first, end, len(turns)))
    for turn in turns:
        console.print()
        for line in _turn_block(turn):
            console.print(line)


@transcripts_group.command("tail")
@log_option
@click.option("--session", "session_id", default=None, help="Only this conversation's turns.")
@click.option("-n", "--lines", "lines", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many of the latest turns to print first.")
@click.option("--follow/--no-follow", default=None,
              help="Keep printing turns as they are logged (default: when stdout is a terminal).")
@click.option("--timeout", type=click.FloatRange(min=0), default=None,
              help="Stop following after this many seconds (for scripts).")
@json_option
@config_option
def tail_command(log_path: str | None, session_id: str | None, lines: int, follow: bool | None,
                 timeout: float | None, as_json: bool, config_path: str | None) -> None:
    """Print the latest turns, then follow the log live.

    Following survives rotation and runs until Ctrl-C or ``--timeout``; it is on by default when stdout
    is a terminal. Torn or corrupt lines of the log are skipped, each with a note on stderr.
    """
    from csbot.transcripts import follow as follow_log

    path = _log_path(log_path, config_path)
    if follow is None:
        follow = sys.stdout.isatty()
    if not follow:
        _require_log(path)
    stop = _stop_after(0 if not follow else timeout)
    console = None if as_json else _console()
    notes = _SkipNotes(live=20)
    try:
        for turn in follow_log(path, session_id, poll=0.2, stop=stop, last=lines, on_skip=notes):
            if console is None:
                click.echo(_json_line(turn))
            else:
                console.print(_turn_line(turn, with_session=session_id is None))
            sys.stdout.flush()
    except KeyboardInterrupt:  # the normal way to end following
        return
    finally:
        notes.finish()


@transcripts_group.command("export")
@click.option("--log", "log_paths", multiple=True, type=click.Path(dir_okay=False),
              help="Transcript log; repeat for several (default from config: transcripts.path).")
@click.option("--helpdesk", "helpdesk_paths", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Raw helpdesk history (JSON, JSONL or CSV conversations) to add as a source; repeatable.")
@click.option("--since", default=None, help="Only turns from then on: an ISO date/time, or a duration ago (7d, 12h).")
@click.option("--select", type=click.Choice(["low-confidence", "fallback", "handoff", "all"]),
              default="low-confidence", show_default=True, help="Which customer turns to consider.")
@click.option("--strategy", type=click.Choice(["uncertainty", "random"]), default="uncertainty",
              show_default=True, help="Most uncertain first (spread over intents), or a seeded random sample.")
@click.option("--score", type=click.Choice(["margin", "entropy"]), default="entropy", show_default=True,
              help="The uncertainty score of --strategy uncertainty.")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True, help="At most this many items.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --strategy random.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True, help="The review file to write.")
@config_option
def export_command(log_paths: tuple[str, ...], helpdesk_paths: tuple[str, ...], since: str | None, select: str,
                   strategy: str, score: str, limit: int, seed: int, out_path: str, config_path: str | None) -> None:
    """Write a review file: the turns a person should label, pre-filled with the model's guess.

    Near-duplicates are merged (each line counts them); agents' messages and undelivered replies are never
    exported as customer examples. With --select handoff or all, handed-over conversations add Q&A candidates
    (the customer's question and the agent's answer). Set each line's review.decision, then run
    `csbot review import`.
    """
    from csbot.transcripts import iter_turns, log_files
    from training.review import export_review, helpdesk_file_items, parse_since, write_review_file

    start = None
    if since is not None:
        try:
            start = parse_since(since)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--since") from None
    paths = [Path(p) for p in log_paths]
    if not paths:
        default = _log_path(None, config_path)
        if log_files(default) or not helpdesk_paths:
            paths = [default]
    for path in paths:
        _require_log(path)
    notes = _SkipNotes()
    turns = [turn for path in paths for turn in iter_turns(path, on_skip=notes)]
    notes.finish()
    extra = [item for path in helpdesk_paths for item in helpdesk_file_items(path)]
    result = export_review(turns, select=select, since=start, strategy=strategy, score=score, limit=limit,
                           seed=seed, extra=extra)
    write_review_file(result.items, out_path)
    logs = f" from {len(paths)} log{'s' if len(paths) != 1 else ''}" if paths else ""
    click.echo(f"read {result.read} turns{logs}; selected {result.selected} ({select})")
    if helpdesk_paths:
        click.echo(f"helpdesk: {len(extra)} items from {len(helpdesk_paths)} file(s)")
    sources = ", ".join(f"{name} {count}" for name, count in sorted(result.by_source.items()))
    click.echo(f"merged {result.merged} near-duplicates of {result.candidates} candidates; "
               f"wrote {result.written} items to {out_path}" + (f" ({sources})" if sources else ""))


def _stop_after(seconds: float | None) -> Callable[[], bool] | None:
    """When following stops: after ``seconds`` (0: once the existing turns are printed), or never (``None``)."""
    if seconds is None:
        return None
    deadline = time.monotonic() + seconds
    return lambda: time.monotonic() >= deadline


# -- rendering --------------------------------------------------------------------------------------


def _json_line(turn: TranscriptTurn) -> str:
    """A turn as the log holds it: one line of JSON, no line break of any kind inside (U+2028 escaped)."""
    from csbot.transcripts import turn_to_json

    return turn_to_json(turn)


def _when(timestamp: float, fmt: str = "%H:%M:%S") -> str:
    return datetime.fromtimestamp(timestamp).strftime(fmt)


def _header(session_id: str, first: TranscriptTurn, end: TranscriptTurn, count: int) -> Text:
    from rich.text import Text

    span = f"{_when(first.timestamp, '%Y-%m-%d %H:%M:%S')} - {_when(end.timestamp)}"
    return Text.assemble(("session ", "dim"), (session_id, "bold"), (f" · {first.channel} · {count} turns · {span}", "dim"))


def _intent(parse: dict[str, Any] | None) -> tuple[str | None, float | None]:
    """Intent name and confidence from a parse result (``intent`` a dict, or a name beside ``confidence``)."""
    if not parse:
        return None, None
    intent = parse.get("intent")
    if isinstance(intent, dict):
        return intent.get("name"), intent.get("confidence")
    return intent, parse.get("confidence")


def _understood(turn: TranscriptTurn) -> Text:
    from rich.text import Text

    name, confidence = _intent(turn.parse)
    text = Text()
    if name is not None:
        text.append(str(name), "cyan")
        if confidence is not None:
            text.append(f" {float(confidence):.2f}")
    else:
        text.append("no parse", "dim")
    if turn.parse and turn.parse.get("out_of_scope"):
        text.append(" out of scope", "yellow")
    entities = (turn.parse or {}).get("entities") or []
    if entities:
        text.append(" · " + ", ".join(f"{e.get('entity')}={e.get('value')}" for e in entities if isinstance(e, dict)))
    return text


def _decision(turn: TranscriptTurn) -> str:
    return turn.decision if turn.source in ("", turn.decision) else f"{turn.decision}/{turn.source}"


def _reply_texts(turn: TranscriptTurn) -> list[tuple[str, list[str]]]:
    """Each bubble of the reply: its text and its buttons' titles."""
    out = []
    for message in turn.reply.get("messages") or []:
        if isinstance(message, dict):
            buttons = [str(b.get("title", b.get("payload", ""))) for b in message.get("buttons") or []
                       if isinstance(b, dict)]
            out.append((str(message.get("text", "")), buttons))
    return out


def _turn_block(turn: TranscriptTurn) -> list[Text]:
    """The lines ``show`` prints for one turn."""
    from rich.text import Text

    pad = " " * 10
    lines = [
        Text.assemble((f"{_when(turn.timestamp)}  ", "dim"), ("customer: ", "bold green"), turn.user_text),
        Text.assemble(pad, ("intent: ", "dim"), _understood(turn), ("   decision: ", "dim"), _decision(turn),
                      (f"   {turn.latency_ms:.0f} ms", "dim")),
    ]
    if turn.hits:
        top = turn.hits[0]
        score = top.get("score")
        lines.append(Text.assemble(pad, ("top hit: ", "dim"), str(top.get("question", top.get("id", ""))),
                                   f" ({float(score):.2f})" if score is not None else ""))
    for index, (text, buttons) in enumerate(_reply_texts(turn)):
        lines.append(Text.assemble(pad, ("bot: " if index == 0 else "     ", "bold blue"), text))
        if buttons:
            lines.append(Text.assemble(pad, "     ", ("  ".join(f"[{b}]" for b in buttons), "magenta")))
    if turn.reply.get("handoff"):
        lines.append(Text.assemble(pad, ("handed over to a person", "yellow")))
    if turn.correction:
        lines.append(Text.assemble(pad, ("correction: ", "dim"), json.dumps(turn.correction, ensure_ascii=False)))
    return lines


def _turn_line(turn: TranscriptTurn, with_session: bool) -> Text:
    """One line per turn for ``tail``."""
    from rich.text import Text

    line = Text(f"{_when(turn.timestamp, '%Y-%m-%d %H:%M:%S')} ", "dim")
    if with_session:
        line.append(f"{turn.session_id} ", "bold")
    line.append(f"#{turn.turn} ", "dim")
    line.append(" ".join(turn.user_text.splitlines()), "green")
    line.append(" → ")
    line.append_text(_understood(turn))
    line.append(f" → {_decision(turn)} → ")
    bubbles = _reply_texts(turn)
    line.append(" | ".join(" ".join(text.splitlines()) for text, _ in bubbles), "blue")
    buttons = [b for _, bs in bubbles for b in bs]
    if buttons:
        line.append(" " + " ".join(f"[{b}]" for b in buttons), "magenta")
    return line
