"""The directory registry's own files: ``registry.json`` (the state), ``current.json`` (what pollers read) and
the writers' lock, read and replaced atomically (see :mod:`csbot.registry.directory` for the layout)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csbot.artefacts import utc_now
from csbot.atomic_files import write_text_atomically
from csbot.errors import RegistryError
from csbot.registry.base import KINDS, Kind, VersionEntry

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: writers are not serialised across processes
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

REGISTRY_FILE = "registry.json"
CURRENT_FILE = "current.json"
LOCK_FILE = ".lock"
#: The layout of ``registry.json`` this csbot reads and writes.
FORMAT = 1
#: The folder of each kind's versions inside the registry.
KIND_DIRS: dict[Kind, str] = {"model": "models", "index": "indexes"}
UNCHANGED = "nothing was changed"


@dataclass
class RegistryState:
    """What ``registry.json`` holds, in memory."""

    generation: int = 0
    current: dict[str, str | None] = field(default_factory=lambda: dict.fromkeys(KINDS))
    history: dict[str, list[str]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    entries: list[VersionEntry] = field(default_factory=list)  # in registration order
    #: sha256 of each version's manifest as registered, by (kind, version): a changed manifest is refused
    seals: dict[tuple[str, str], str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def find(self, kind: str, version: str) -> VersionEntry | None:
        for entry in self.entries:
            if entry.kind == kind and entry.version == version:
                return entry
        return None

    def token(self) -> str:
        return generation_token(self.generation, self.current)

    def log(self, action: str, entry: VersionEntry, by: str | None = None, note: str = "") -> None:
        event = {"at": utc_now(), "action": action, "kind": entry.kind, "version": entry.version}
        if by:
            event["by"] = by
        if note:
            event["note"] = note
        self.events.append(event)


def generation_token(generation: int, current: Mapping[str, str | None]) -> str:
    """The token :meth:`DirectoryRegistry.generation` returns: the counter and each kind's current version."""
    return ":".join([str(generation), *(current.get(kind) or "-" for kind in KINDS)])


def relative_path(entry: VersionEntry, root: Path) -> str:
    try:
        return entry.path.relative_to(root).as_posix()
    except ValueError:
        return str(entry.path)



class RegistryFiles:
    """Reading, parsing and atomically replacing the state files of a registry rooted at :attr:`root`."""

    root: Path

    @property
    def registry_file(self) -> Path:
        return self.root / REGISTRY_FILE

    def _read(self) -> RegistryState:
        """The state in ``registry.json`` (an empty one when there is none yet); RegistryError when unreadable."""
        path = self.registry_file
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return RegistryState()
        except NotADirectoryError as exc:
            raise RegistryError(f"{self.root}: the registry path is not a directory") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise RegistryError(f"{path}: cannot read the registry ({exc})") from exc
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise RegistryError(f"{path}: corrupt registry file, not JSON ({exc}); restore it from a backup "
                                f"({UNCHANGED})") from exc
        try:
            return self._parse(data)
        except (ValueError, TypeError, KeyError) as exc:
            raise RegistryError(f"{path}: corrupt registry file ({exc}); restore it from a backup "
                                f"({UNCHANGED})") from exc

    def _parse(self, data: Any) -> RegistryState:
        if not isinstance(data, dict):
            raise TypeError(f"expected an object, found {type(data).__name__}")
        if data.get("format") != FORMAT:
            raise ValueError(f"layout format {data.get('format')!r}; this csbot reads format {FORMAT}")
        generation = data.get("generation")
        if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
            raise TypeError("'generation' must be a whole number")
        raw_entries, current, history = data.get("entries"), data.get("current"), data.get("history")
        if not isinstance(raw_entries, list):
            raise TypeError("'entries' must be a list")
        if not isinstance(current, dict) or not isinstance(history, dict):
            raise TypeError("'current' and 'history' must be objects")
        state = RegistryState(generation=generation)
        for raw in raw_entries:
            entry = VersionEntry.from_dict(raw, self.root)
            if state.find(entry.kind, entry.version) is not None:
                raise ValueError(f"{entry.kind} {entry.version!r} is listed twice")
            state.entries.append(entry)
            if isinstance(raw.get("manifest_sha256"), str):
                state.seals[(entry.kind, entry.version)] = raw["manifest_sha256"]
        for kind in KINDS:
            version = current.get(kind)
            if version is not None and (not isinstance(version, str) or state.find(kind, version) is None):
                raise ValueError(f"the current {kind} {version!r} is not an entry")
            state.current[kind] = version
            versions = history.get(kind, [])
            if not isinstance(versions, list) or any(state.find(kind, v) is None for v in versions):
                raise ValueError(f"the {kind} history names versions that are not entries")
            state.history[kind] = list(versions)
        events = data.get("events", [])
        state.events = [event for event in events if isinstance(event, dict)] if isinstance(events, list) else []
        return state

    def _load(self) -> RegistryState:
        """The state to change, read under the lock; the generation never goes below what ``current.json`` said."""
        state = self._read()
        with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
            written = json.loads((self.root / CURRENT_FILE).read_text(encoding="utf-8")).get("generation")
            if isinstance(written, int) and written > state.generation:
                state.generation = written
        return state

    def _dump(self, state: RegistryState) -> dict[str, Any]:
        entries = []
        for entry in state.entries:
            record = entry.to_dict()
            record["path"] = relative_path(entry, self.root)
            seal = state.seals.get((entry.kind, entry.version))
            if seal:
                record["manifest_sha256"] = seal
            entries.append(record)
        return {"format": FORMAT, "generation": state.generation, "current": dict(state.current),
                "history": {kind: list(versions) for kind, versions in state.history.items()},
                "entries": entries, "events": state.events}

    def _save(self, state: RegistryState) -> None:
        """``registry.json`` then ``current.json``, each replaced atomically."""
        self._write_atomic(self.registry_file, self._dump(state))
        self._write_atomic(self.root / CURRENT_FILE,
                           {"generation": state.generation, "current": dict(state.current), "token": state.token()})

    def _write_atomic(self, path: Path, data: Any) -> None:
        try:
            write_text_atomically(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
            self._fsync_dir()
        except OSError as exc:
            raise RegistryError(f"{path}: cannot write the registry ({exc.strerror or exc}); {UNCHANGED}") from exc

    def _fsync_dir(self) -> None:
        with contextlib.suppress(OSError):
            fd = os.open(self.root, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold ``ROOT/.lock`` exclusively, creating the registry directory first; RegistryError when it cannot be
        written (checked before anything changes)."""
        root = self.root
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RegistryError(f"{root}: cannot create the registry directory ({exc.strerror or exc}); "
                                f"{UNCHANGED}") from exc
        if not os.access(root, os.W_OK | os.X_OK):
            raise RegistryError(f"{root}: the registry directory is not writable by this user; {UNCHANGED}")
        try:
            fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise RegistryError(f"{root}: the registry directory is not writable: cannot open its lock file "
                                f"{LOCK_FILE} ({exc.strerror or exc}); {UNCHANGED}") from exc
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    log.info("waiting for another csbot process that is writing the registry %s", root)
                    fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock; the file stays, so every writer locks the same one


__all__ = ["CURRENT_FILE", "FORMAT", "KIND_DIRS", "LOCK_FILE", "REGISTRY_FILE", "UNCHANGED", "RegistryFiles",
           "RegistryState", "generation_token", "relative_path"]
