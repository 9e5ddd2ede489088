"""Reading a JSONL transcript log back: every turn of it (with its rotated files), oldest first.

Layout (what :class:`bot.transcripts.jsonl.JsonlTranscriptLog` writes): ``log.jsonl`` is the current
file; rotation renames it to ``log.jsonl.1`` (the previous ``.1`` becomes ``.2`` and so on up to ``.N``;
the oldest is dropped). ``log.jsonl.lock`` is the lock file every writer takes exclusively with
``fcntl.flock`` around each append and rotation; readers take it shared while they open the set of files,
so they see a consistent set. Each turn is one line of :func:`~csbot.transcripts.record.turn_to_json`.

Lines are split on ``\n`` only and each is decoded as strict UTF-8. A line that is not a turn (torn by a
crash or a full disk mid-write, or damaged otherwise) is skipped and reported once, as a
:class:`SkippedLine` naming the file and line, to the ``on_skip`` callback (by default a warning in this
module's log); every other line still reads. When a complete turn follows the damage on the same line (as
older writers appended it onto a torn line), that turn is recovered. A file that cannot be read at
all is a :class:`~csbot.errors.StoreError`.

:func:`iter_turns` and :func:`log_files` are the public readers; the helpers below them (open the set of
files, read complete lines, parse a line) are shared with :mod:`csbot.transcripts.follow`.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from csbot.errors import StoreError
from csbot.transcripts.record import TranscriptTurn, turn_from_json

log = logging.getLogger(__name__)

_CHUNK = 1 << 16

#: Where a turn starts: :func:`turn_to_json` writes ``session_id`` first. Inside a JSON string a quote is
#: escaped, so these bytes in a line are the start of a record (or damage), never part of a text.
_RECORD_START = b'{"session_id":'


@dataclass(frozen=True)
class SkippedLine:
    """A line of a log that is not a transcript turn: its file, its number (from 1) and why.

    ``recovered`` is true when a complete turn glued onto the damaged part was read from it.
    """

    path: Path
    line: int
    reason: str
    recovered: bool = False

    def __str__(self) -> str:
        note = "; the turn appended after it was recovered" if self.recovered else ""
        return f"{self.path}:{self.line}: skipped a torn or corrupt line ({self.reason}){note}"


#: What a reader calls for each line it skips.
OnSkip = Callable[[SkippedLine], None]


def warn_skipped(skipped: SkippedLine) -> None:
    """The default ``on_skip``: one warning per skipped line."""
    log.warning("%s", skipped)


def lock_path(path: str | Path) -> Path:
    """The lock file beside a log: ``<path>.lock``."""
    return Path(f"{path}.lock")


def log_files(path: str | Path) -> list[Path]:
    """The existing files of a log, oldest first: ``.N`` ... ``.1``, then the current file."""
    path = Path(path)
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)")
    backups: list[tuple[int, Path]] = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(path.parent if str(path.parent) else "."):
            match = pattern.fullmatch(entry.name)
            if match and entry.is_file():
                backups.append((int(match.group(1)), path.parent / entry.name))
    files = [p for _, p in sorted(backups, reverse=True)]
    if path.is_file():
        files.append(path)
    return files


@dataclass
class OpenedFile:
    """One file of a log, opened for reading."""

    path: Path  # its name when opened
    file: BinaryIO
    file_id: tuple[int, int]
    current: bool


def open_log_files(path: Path) -> list[OpenedFile]:
    """Open every file of the log, oldest first, under a shared lock so no rotation runs meanwhile.

    Open descriptors keep reading the same files however they are renamed later.
    """
    lock_fd = None
    with contextlib.suppress(OSError):
        lock_fd = os.open(lock_path(path), os.O_RDONLY | os.O_CLOEXEC)
    try:
        if lock_fd is not None:
            fcntl.flock(lock_fd, fcntl.LOCK_SH)
        opened: list[OpenedFile] = []
        for name in log_files(path):
            try:
                file = open(name, "rb", buffering=0)  # noqa: SIM115 - handed to the caller
            except FileNotFoundError:  # renamed by a writer that does not lock
                continue
            except OSError as exc:
                close_all(opened)
                raise StoreError(f"{name}: cannot read the transcript log: {exc.strerror or exc}") from exc
            st = os.fstat(file.fileno())
            opened.append(OpenedFile(name, file, (st.st_dev, st.st_ino), name == path))
        return opened
    finally:
        if lock_fd is not None:
            os.close(lock_fd)  # releases the shared lock


class LineReader:
    """Complete lines of one open file as they appear, numbered; a partial last line waits for its end."""

    def __init__(self, opened: OpenedFile) -> None:
        self.path, self.file, self.file_id = opened.path, opened.file, opened.file_id
        self.line = 0
        self._partial = b""

    def chunk(self) -> list[tuple[int, bytes]] | None:
        """The lines completed by the next read, or ``None`` at the end of the file for now."""
        try:
            data = self.file.read(_CHUNK)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot read the transcript log: {exc.strerror or exc}") from exc
        if not data:
            return None
        *lines, self._partial = (self._partial + data).split(b"\n")
        numbered = []
        for raw in lines:
            self.line += 1
            numbered.append((self.line, raw))
        return numbered

    def rest(self) -> tuple[int, bytes] | None:
        """A last line without a newline, if any (a write in progress, or a truncated file)."""
        if not self._partial:
            return None
        return self.line + 1, self._partial

    def close(self) -> None:
        self.file.close()


def parse_line(raw: bytes, path: Path, line: int, on_skip: OnSkip | None = warn_skipped) -> TranscriptTurn | None:
    """One line as a turn; ``None`` for a blank line, and for a line that is not a turn, which is reported
    to ``on_skip`` (unless that is ``None``: a line still being written, not yet known to be damaged).

    A damaged line that ends with a complete turn (appended onto a torn line) gives that turn.
    """
    if not raw.strip():
        return None
    try:
        return turn_from_json(raw)
    except ValueError as exc:
        reason = str(exc)
    start = raw.rfind(_RECORD_START)
    turn = None
    if start > 0:
        with contextlib.suppress(ValueError):
            turn = turn_from_json(raw[start:])
    if on_skip is not None:
        on_skip(SkippedLine(path, line, reason, recovered=turn is not None))
    return turn


def turns_of(reader: LineReader, session_id: str | None, *, final: bool,
             on_skip: OnSkip = warn_skipped) -> Iterator[TranscriptTurn]:
    """Every complete turn left in ``reader``; with ``final``, a newline-less last line too."""
    while (lines := reader.chunk()) is not None:
        for number, raw in lines:
            turn = parse_line(raw, reader.path, number, on_skip)
            if turn is not None and (session_id is None or turn.session_id == session_id):
                yield turn
    rest = reader.rest() if final else None
    if rest is not None:
        turn = parse_line(rest[1], reader.path, rest[0], on_skip)
        if turn is not None and (session_id is None or turn.session_id == session_id):
            yield turn


def iter_turns(path: str | Path, session_id: str | None = None, *,
               on_skip: OnSkip = warn_skipped) -> Iterator[TranscriptTurn]:
    """Every turn of a log (of one session when given), oldest first: rotated files, then the current.

    A line that is not a turn is skipped and reported to ``on_skip`` (default: a warning naming the file
    and line); it never stops the reading. A newline-less last line of the current file is an append in
    progress (or one torn by a crash): read when it already parses, else left unreported until the next
    append ends it. A file that cannot be read raises :class:`~csbot.errors.StoreError`.
    """
    opened = open_log_files(Path(path))
    try:
        for item in opened:
            reader = LineReader(item)
            yield from turns_of(reader, session_id, final=not item.current, on_skip=on_skip)
            rest = reader.rest() if item.current else None
            if rest is not None:
                turn = parse_line(rest[1], reader.path, rest[0], on_skip=None)
                if turn is not None and (session_id is None or turn.session_id == session_id):
                    yield turn
    finally:
        close_all(opened)


def close_all(opened: list[OpenedFile]) -> None:
    """Close every file of ``opened``."""
    for item in opened:
        item.file.close()


def file_moved(path: Path, file_id: tuple[int, int]) -> bool:
    """Whether ``path`` no longer names the file we are reading."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return True
    return (st.st_dev, st.st_ino) != file_id


__all__ = ["OnSkip", "SkippedLine", "iter_turns", "lock_path", "log_files", "warn_skipped"]
