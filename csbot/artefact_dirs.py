"""Writing artefact directories safely: what may be replaced, the lock that serialises edits, the atomic swap.

:func:`atomic_directory` builds the new artefact in a sibling temp directory and swaps it in whole, under
:func:`artefact_lock`, so readers see the old artefact or the complete new one. It never deletes what csbot
did not write: :func:`check_out_dir` refuses an existing path that is neither an empty directory nor an
artefact of the same kind. Directories and files get the process umask.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from csbot.artefacts import ARTEFACT_KINDS
from csbot.errors import ConfigError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: edits are serialised within one process only
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


def check_out_dir(out_dir: str | Path, kind: str) -> Path:
    """The resolved ``out_dir`` when an artefact of ``kind`` may be written there; ConfigError otherwise.

    Allowed: a path that does not exist, an empty directory, or an artefact of the same kind (it is replaced
    whole). Refused, with nothing touched: a file, a non-empty directory that is not such an artefact (another
    kind, or anything else), and the file system root.
    """
    spec = ARTEFACT_KINDS[kind]
    out = Path(out_dir).expanduser().resolve()
    refuse = "give an empty or new directory (nothing was changed)"
    if out.parent == out:
        raise ConfigError(f"{out}: cannot write a csbot {spec.what} over the file system root; {refuse}")
    if not out.exists():
        if out.is_symlink():
            raise ConfigError(f"{Path(out_dir)}: is a broken symbolic link; {refuse}")
        return out
    if not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a directory; {refuse}")
    try:
        entries = sum(1 for _ in out.iterdir())
    except OSError as exc:
        raise ConfigError(f"{out}: cannot list the directory ({exc.strerror}); {refuse}") from exc
    if entries == 0:
        return out
    found = _artefact_kind_in(out)
    if found == kind:
        return out
    if found in ARTEFACT_KINDS:
        raise ConfigError(f"{out}: is a csbot {ARTEFACT_KINDS[found].what}, not {spec.article} {spec.what}; {refuse}")
    plural = "entry" if entries == 1 else "entries"
    raise ConfigError(f"{out}: exists and is not a csbot {spec.what} (it holds {entries} {plural}); {refuse}")


def _artefact_kind_in(directory: Path) -> str | None:
    """The kind whose manifest ``directory`` holds (its ``kind`` field matching), or None."""
    for kind, spec in ARTEFACT_KINDS.items():
        try:
            manifest = json.loads((directory / spec.manifest).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(manifest, dict) and manifest.get("kind") == kind:
            return kind
    return None


def lock_path(path: str | Path) -> Path:
    """The lock file of an artefact: ``.NAME.lock`` beside it, so it outlives every atomic swap of the directory."""
    out = Path(path).expanduser().resolve()
    return out.with_name(f".{out.name}.lock")


_LOCKS_GUARD = threading.Lock()
_LOCKS: dict[Path, tuple[threading.RLock, list[Any]]] = {}


@contextlib.contextmanager
def artefact_lock(path: str | Path) -> Iterator[Path]:
    """Hold the exclusive lock of the artefact at ``path`` (re-entrant within a thread); yields the lock file.

    Other processes wait (``fcntl.flock`` on :func:`lock_path`), and so do other threads of this one. The lock
    file is removed when the lock is released, so no ``.lock`` files are left beside artefacts. The parent
    directory must exist.
    """
    target = lock_path(path)
    with _LOCKS_GUARD:
        mutex, state = _LOCKS.setdefault(target, (threading.RLock(), [None, 0]))
    with mutex:
        if state[1] == 0:
            state[0] = _acquire(target)
        state[1] += 1
        try:
            yield target
        finally:
            state[1] -= 1
            if state[1] == 0:
                fd, state[0] = state[0], None
                _release(target, fd)


def _acquire(target: Path) -> int | None:
    if fcntl is None:  # pragma: no cover
        return None
    while True:
        try:
            fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise ConfigError(f"{target.parent}: cannot create the lock file {target.name} ({exc.strerror})") from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.warning("waiting for another csbot process that is writing %s", target.with_name(target.name[1:-5]))
                fcntl.flock(fd, fcntl.LOCK_EX)
            held, current = os.fstat(fd), _stat(target)
        except BaseException:
            os.close(fd)
            raise
        if current is not None and (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino):
            return fd
        os.close(fd)  # the previous holder removed the file while we waited: lock the new one


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _release(target: Path, fd: int | None) -> None:
    if fd is None:  # pragma: no cover
        return
    try:
        target.unlink(missing_ok=True)  # while still holding it: a waiter then sees a new file and retries
    finally:
        os.close(fd)


def _temp_directory(out: Path, label: str) -> Path:
    """A new, empty sibling of ``out`` created with the process umask (mkdtemp would make it 0700)."""
    for _ in range(100):
        candidate = out.with_name(f".{out.name}.{label}-{secrets.token_hex(4)}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"cannot create a temporary directory beside {out}")  # pragma: no cover


@contextlib.contextmanager
def atomic_directory(out_dir: str | Path, *, kind: str) -> Iterator[Path]:
    """Yield a sibling temp dir to fill; on success it replaces ``out_dir``, on failure it is removed.

    Readers see either the old directory or the complete new one, never a half-written mix. ``out_dir`` must
    pass :func:`check_out_dir` for ``kind`` (checked first, and again just before the swap), so the only
    directory ever removed is an artefact of the same kind, or an empty one. The whole write holds
    :func:`artefact_lock`; directories and files are created with the process umask.
    """
    out = check_out_dir(out_dir, kind)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{out.parent}: cannot create the directory ({exc.strerror})") from exc
    with artefact_lock(out):
        check_out_dir(out, kind)
        tmp = _temp_directory(out, "tmp")
        try:
            yield tmp
            check_out_dir(out, kind)
            if out.exists():
                old = out.with_name(f".{out.name}.old-{secrets.token_hex(4)}")
                out.rename(old)
                tmp.rename(out)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


__all__ = ["artefact_lock", "atomic_directory", "check_out_dir", "lock_path"]
