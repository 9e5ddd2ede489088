"""The transcript log as JSON lines on disk, safe for many writers, rotated by size, readable live.

Layout: ``log.jsonl`` is written; rotation renames it to ``log.jsonl.1`` (the previous ``.1`` becomes
``.2`` and so on up to ``.N``; the oldest is dropped). ``log.jsonl.lock`` is the lock file every writer
takes with ``fcntl.flock`` around each append and rotation; readers take it shared while they open the
set of files, so they see a consistent set.

Each turn is one line written by one ``os.write`` on an ``O_APPEND`` descriptor while the lock is held,
so lines from threads and from separate processes (several ``csbot serve`` workers on one host) never
tear or interleave. A writer whose file was rotated away by another process notices it by the inode and
reopens the current file. Writes reach the kernel at once (a crash of the process loses nothing) but are
not fsync'ed (a power cut may lose the last turns). The lock is ``flock``-based, so the file must be on a
local filesystem, not NFS.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from bot.transcripts.base import TranscriptSink, turn_from_json, turn_to_json
from bot.transcripts.record import TranscriptTurn
from csbot.errors import ConfigError, DataError, StoreError

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_BACKUPS = 5
_CHUNK = 1 << 16


def lock_path(path: str | Path) -> Path:
    """The lock file beside a log: ``<path>.lock``."""
    return Path(f"{path}.lock")


class JsonlTranscriptLog(TranscriptSink):
    """Appends turns to a JSONL file, rotating it at ``max_bytes`` and keeping ``backups`` old files.

    One instance may be shared by threads and coroutines; several instances and processes may write the
    same path at once (see the module docstring). :meth:`append` runs the blocking write in a worker
    thread so the event loop never waits on the disk; :meth:`write` is the same for synchronous code.
    """

    def __init__(self, path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES, backups: int = DEFAULT_BACKUPS) -> None:
        if max_bytes < 1:
            raise ConfigError(f"transcript log max_bytes must be at least 1, got {max_bytes}")
        if backups < 0:
            raise ConfigError(f"transcript log backups must be 0 or more, got {backups}")
        self.path = Path(path)
        self.lock_path = lock_path(self.path)
        self.max_bytes = max_bytes
        self.backups = backups
        self._mutex = threading.Lock()  # flock does not exclude threads sharing one descriptor
        self._fd: int | None = None
        self._file_id: tuple[int, int] | None = None
        self._lock_fd: int | None = None
        self._pid = os.getpid()
        self._closed = False

    def __repr__(self) -> str:
        return f"JsonlTranscriptLog({str(self.path)!r})"

    async def append(self, turn: TranscriptTurn) -> None:
        """Append one turn as one line, off the event loop; raises :class:`StoreError` when it cannot."""
        line = (turn_to_json(turn) + "\n").encode("utf-8")
        await asyncio.to_thread(self._write_line, line)

    def write(self, turn: TranscriptTurn) -> None:
        """Synchronous :meth:`append`, for threads and scripts."""
        self._write_line((turn_to_json(turn) + "\n").encode("utf-8"))

    async def close(self) -> None:
        """Close the descriptors; later appends raise :class:`StoreError`."""
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._mutex:
            self._closed = True
            self._close_fds()

    def _close_fds(self) -> None:
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._lock_fd = self._file_id = None

    def _write_line(self, line: bytes) -> None:
        with self._mutex:
            if self._closed:
                raise StoreError(f"{self.path}: the transcript log is closed")
            if self._pid != os.getpid():  # forked: a shared open file description would share the flock
                self._fd = self._lock_fd = self._file_id = None
                self._pid = os.getpid()
            try:
                lock_fd = self._lock_file()
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
                try:
                    fd = self._current_file()
                    size = os.fstat(fd).st_size
                    if size and size + len(line) > self.max_bytes:
                        self._rotate()
                        fd = self._reopen()
                    _write_all(fd, line)
                finally:
                    fcntl.flock(lock_fd, fcntl.LOCK_UN)
            except OSError as exc:
                self._close_fds()  # start afresh next time
                raise StoreError(f"{self.path}: cannot write the transcript log: {exc.strerror or exc}") from exc

    def _lock_file(self) -> int:
        if self._lock_fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        return self._lock_fd

    def _current_file(self) -> int:
        """Our descriptor, reopened when the path now names another file (rotated by another writer)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return self._reopen()
        if self._fd is None or (st.st_dev, st.st_ino) != self._file_id:
            return self._reopen()
        return self._fd

    def _reopen(self) -> int:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        st = os.fstat(fd)
        self._fd, self._file_id = fd, (st.st_dev, st.st_ino)
        return fd

    def _rotate(self) -> None:
        """``log`` -> ``log.1`` -> ... -> ``log.N``; the oldest is overwritten (dropped). Lock held."""
        if self.backups == 0:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            return
        for index in range(self.backups - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{self.path}.{index}", f"{self.path}.{index + 1}")
        os.replace(self.path, f"{self.path}.1")
        log.debug("rotated %s", self.path)


def _write_all(fd: int, data: bytes) -> None:
    """One ``os.write`` in practice (regular files take it whole); loops only on a short write."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


# -- reading ----------------------------------------------------------------------------------------


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
class _Opened:
    path: Path  # its name when opened
    file: BinaryIO
    file_id: tuple[int, int]
    current: bool


def _snapshot(path: Path) -> list[_Opened]:
    """Open every file of the log, oldest first, under a shared lock so no rotation runs meanwhile.

    Open descriptors keep reading the same files however they are renamed later.
    """
    lock_fd = None
    with contextlib.suppress(OSError):
        lock_fd = os.open(lock_path(path), os.O_RDONLY | os.O_CLOEXEC)
    try:
        if lock_fd is not None:
            fcntl.flock(lock_fd, fcntl.LOCK_SH)
        opened = []
        for name in log_files(path):
            try:
                file = open(name, "rb", buffering=0)  # noqa: SIM115 - handed to the caller
            except FileNotFoundError:  # renamed by a writer that does not lock
                continue
            st = os.fstat(file.fileno())
            opened.append(_Opened(name, file, (st.st_dev, st.st_ino), name == path))
        return opened
    finally:
        if lock_fd is not None:
            os.close(lock_fd)  # releases the shared lock


class _LineReader:
    """Complete lines of one open file as they appear, numbered; a partial last line waits for its end."""

    def __init__(self, opened: _Opened) -> None:
        self.path, self.file, self.file_id = opened.path, opened.file, opened.file_id
        self.line = 0
        self._partial = b""

    def chunk(self) -> list[tuple[int, bytes]] | None:
        """The lines completed by the next read, or ``None`` at the end of the file for now."""
        data = self.file.read(_CHUNK)
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


def _parse(raw: bytes, path: Path, line: int) -> TranscriptTurn | None:
    if not raw.strip():
        return None
    try:
        return turn_from_json(raw)
    except ValueError as exc:
        raise DataError(f"malformed transcript line: {exc}", path, line) from exc


def _turns_of(reader: _LineReader, session_id: str | None, *, final: bool) -> Iterator[TranscriptTurn]:
    """Every complete turn left in ``reader``; with ``final``, a newline-less last line too."""
    while (lines := reader.chunk()) is not None:
        for number, raw in lines:
            turn = _parse(raw, reader.path, number)
            if turn is not None and (session_id is None or turn.session_id == session_id):
                yield turn
    rest = reader.rest() if final else None
    if rest is not None:
        turn = _parse(rest[1], reader.path, rest[0])
        if turn is not None and (session_id is None or turn.session_id == session_id):
            yield turn


def iter_turns(path: str | Path, session_id: str | None = None) -> Iterator[TranscriptTurn]:
    """Every turn of a log (of one session when given), oldest first: rotated files, then the current.

    A malformed line raises :class:`DataError` naming the file and line. A newline-less last line of the
    current file is an append in progress and is skipped unless it already parses.
    """
    opened = _snapshot(Path(path))
    try:
        for item in opened:
            reader = _LineReader(item)
            yield from _turns_of(reader, session_id, final=not item.current)
            rest = reader.rest() if item.current else None
            if rest is not None:
                try:
                    turn = _parse(rest[1], reader.path, rest[0])
                except DataError:
                    continue
                if turn is not None and (session_id is None or turn.session_id == session_id):
                    yield turn
    finally:
        for item in opened:
            item.file.close()


class _Event(Protocol):
    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


def follow(
    path: str | Path,
    session_id: str | None = None,
    poll: float = 0.2,
    stop: _Event | Callable[[], bool] | None = None,
    last: int = 0,
) -> Iterator[TranscriptTurn]:
    """Yield turns as they are appended to a log, like ``tail -F``; runs until ``stop`` says so.

    ``last`` > 0 first yields up to that many existing turns (of the session, when given); there is no
    gap or repeat between them and the live ones. ``stop`` is a ``threading.Event`` or a callable
    returning true to end; it is checked every ``poll`` seconds while idle. The log may not exist yet.
    Rotation is followed: when the path names a new file, the rest of the old one is read, then every
    file rotated in since (the log may have rotated several times between two polls), then the new one.
    """
    path = Path(path)
    should_stop: Callable[[], bool]
    if stop is None:
        should_stop, wait = (lambda: False), time.sleep
    elif hasattr(stop, "is_set") and hasattr(stop, "wait"):
        should_stop, wait = stop.is_set, stop.wait
    else:
        should_stop, wait = stop, time.sleep  # type: ignore[assignment]

    def matches(turn: TranscriptTurn | None) -> bool:
        return turn is not None and (session_id is None or turn.session_id == session_id)

    reader: _LineReader | None = None
    opened = _snapshot(path)
    seen = {item.file_id for item in opened}
    try:
        if opened and opened[-1].current:
            reader = _LineReader(opened.pop())
        recent: deque[TranscriptTurn] = deque(maxlen=max(last, 1))
        if reader is not None:
            while (lines := reader.chunk()) is not None:
                if last > 0:
                    recent.extend(t for t in (_parse(raw, reader.path, n) for n, raw in lines) if matches(t))
        if last > 0:
            older: list[TranscriptTurn] = []
            for item in reversed(opened):  # newest rotated file first, only as far back as needed
                if len(older) + len(recent) >= last:
                    break
                older = list(_turns_of(_LineReader(item), session_id, final=True)) + older
            _close_all(opened)
            need = last - len(recent)
            yield from (older[-need:] if need > 0 else []) + list(recent)
        _close_all(opened)

        while not should_stop():
            if reader is not None:
                progressed = False
                while (lines := reader.chunk()) is not None:
                    progressed = True
                    for number, raw in lines:
                        turn = _parse(raw, reader.path, number)
                        if matches(turn):
                            yield turn  # type: ignore[misc]
                    if should_stop():
                        return
                if progressed:
                    continue
                if not _moved(path, reader.file_id):
                    wait(poll)
                    continue
                # Rotated or removed: finish the old file, then take in whatever is new.
                yield from _turns_of(reader, session_id, final=True)
                reader.close()
                reader = None
            opened = _snapshot(path)
            unseen = [item for item in opened if item.file_id not in seen]
            seen = {item.file_id for item in opened}
            for item in unseen:
                if item.current:
                    reader = _LineReader(item)
                    opened.remove(item)  # kept open by the reader
                else:
                    yield from _turns_of(_LineReader(item), session_id, final=True)
            _close_all(opened)
            if reader is None:
                wait(poll)
    finally:
        _close_all(opened)
        if reader is not None:
            reader.close()


def _close_all(opened: list[_Opened]) -> None:
    for item in opened:
        item.file.close()


def _moved(path: Path, file_id: tuple[int, int]) -> bool:
    """Whether ``path`` no longer names the file we are reading."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return True
    return (st.st_dev, st.st_ino) != file_id


__all__ = ["DEFAULT_BACKUPS", "DEFAULT_MAX_BYTES", "JsonlTranscriptLog", "follow", "iter_turns", "log_files"]
