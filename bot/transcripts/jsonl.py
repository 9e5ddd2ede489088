"""Writing the transcript log as JSON lines on disk, safe for many writers, rotated by size.

Layout (read back by :mod:`csbot.transcripts`: ``iter_turns``, ``follow``): ``log.jsonl`` is written;
rotation renames it to ``log.jsonl.1`` (the previous ``.1`` becomes ``.2`` and so on up to ``.N``; the
oldest is dropped). ``log.jsonl.lock`` is the lock file every writer takes with ``fcntl.flock`` around
each append and rotation; readers take it shared while they open the set of files, so they see a
consistent set.

Each turn is one line written by one ``os.write`` on an ``O_APPEND`` descriptor while the lock is held,
so lines from threads and from separate processes (several ``csbot serve`` workers on one host) never
tear or interleave. A line can still be torn by a crash or a full disk mid-write; every record therefore
starts on a fresh line: under the lock, a writer reads the file's last byte and, when it is not ``\n``,
ends the torn line first (with a warning), so the torn line stays one line that readers skip and report,
and the new record is intact. Rotated files thus always end with a whole line. A writer whose file was
rotated away by another process notices it by the inode and reopens the current file. Writes reach the
kernel at once (a crash of the process loses nothing) but are not fsync'ed (a power cut may lose the last
turns). The lock is ``flock``-based, so the file must be on a local filesystem, not NFS.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Self

from bot.transcripts.base import TranscriptSink
from csbot.errors import ConfigError, StoreError
from csbot.transcripts import TranscriptTurn, lock_path, turn_to_json

if TYPE_CHECKING:
    from bot.transcripts.config import TranscriptsConfig

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_BACKUPS = 5


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

    @classmethod
    def from_config(cls, config: TranscriptsConfig, log_path: Path, redis_url: str | None) -> Self:
        """The log at ``log_path`` (the resolved ``transcripts.path``), rotated as the section says."""
        return cls(log_path, config.max_bytes, config.backups)

    def __repr__(self) -> str:
        return f"JsonlTranscriptLog({str(self.path)!r})"

    async def start(self) -> None:
        """Create the folder and open the log and its lock file, so a path that cannot be written fails now."""
        await asyncio.to_thread(self._open)

    def _open(self) -> None:
        with self._locked("open"):
            self._current_file()

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
        with self._locked("write"):
            fd = self._current_file()
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                _write_all(fd, b"\n")
                size += 1
                log.warning("%s: the last line was torn (a crash or a full disk mid-write); ended it, so "
                            "readers skip it and the next turn starts on a fresh line", self.path)
            if size and size + len(line) > self.max_bytes:
                self._rotate()
                fd = self._reopen()
            _write_all(fd, line)

    @contextlib.contextmanager
    def _locked(self, doing: str) -> Iterator[None]:
        """Hold the thread mutex and the log's file lock; an OS error becomes a :class:`StoreError` and the
        descriptors are dropped, so the next call starts afresh."""
        with self._mutex:
            if self._closed:
                raise StoreError(f"{self.path}: the transcript log is closed")
            self._forget_if_forked()
            try:
                lock_fd = self._lock_file()
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(lock_fd, fcntl.LOCK_UN)
            except OSError as exc:
                self._close_fds()
                raise StoreError(f"{self.path}: cannot {doing} the transcript log: {exc.strerror or exc}") from exc

    def _forget_if_forked(self) -> None:
        """In a forked child, drop the parent's descriptors: a shared open file description would share the flock."""
        if self._pid != os.getpid():
            self._fd = self._lock_fd = self._file_id = None
            self._pid = os.getpid()

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
        # read and write: the last byte is read before each append (see the module docstring)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
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


__all__ = ["DEFAULT_BACKUPS", "DEFAULT_MAX_BYTES", "JsonlTranscriptLog"]
