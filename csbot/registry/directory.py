"""The ``directory`` registry backend: versions as directories, the rest in one JSON file.

::

    ROOT/registry.json       every entry, the current version and rollback history per kind, the generation
    ROOT/current.json        the generation and the current versions alone: what a polling server reads
    ROOT/models/<version>/   an NLU model, copied in whole
    ROOT/indexes/<version>/  a Q&A index, copied in whole
    ROOT/.lock               writers (CLI processes, retraining) take an exclusive flock on it, one at a time

Every file is replaced atomically (a temp file in ROOT, fsync, ``os.replace``) and an artefact is copied into a
hidden temp directory, checked, then renamed into place, so a crash never leaves a half-copied version listed:
``registry.json`` is written last and is the one source of truth. ``current.json`` is written after it; a
reader that finds ``registry.json`` newer (a write in progress, or a crash between the two) reads the
generation from ``registry.json`` instead. Reading takes no lock and works on a read-only registry.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from csbot.artefacts import ArtefactManifest, check_files, read_manifest, sha256_file, utc_now
from csbot.errors import ArtefactError, RegistryError, UnknownVersionError
from csbot.registry.base import (
    KINDS,
    MANIFEST_KINDS,
    Kind,
    Registry,
    VersionEntry,
    check_kind,
    check_version_name,
    describe,
    manifest_name,
)
from csbot.registry.state_file import (
    CURRENT_FILE,
    KIND_DIRS,
    LOCK_FILE,
    REGISTRY_FILE,
    UNCHANGED,
    RegistryFiles,
    RegistryState,
    generation_token,
)

log = logging.getLogger(__name__)


def _add_note(entry: VersionEntry, note: str) -> None:
    if note:
        entry.note = f"{entry.note}; {note}" if entry.note else note


class DirectoryRegistry(RegistryFiles, Registry):
    """A registry kept in a directory (see the module docstring for the layout)."""

    # -- reading (no lock) -------------------------------------------------------------------------------

    def get(self, kind: Kind, version: str) -> VersionEntry:
        kind = check_kind(kind)
        entry = self._read().find(kind, version)
        if entry is None:
            raise UnknownVersionError(f"{self.root}: no {describe(kind)} version {version!r} in the registry "
                                      f"(see `csbot models list --kind {kind}`)")
        return entry

    def list(self, kind: Kind) -> list[VersionEntry]:
        kind = check_kind(kind)
        return [entry for entry in reversed(self._read().entries) if entry.kind == kind]

    def current(self, kind: Kind) -> VersionEntry | None:
        kind = check_kind(kind)
        state = self._read()
        version = state.current.get(kind)
        return state.find(kind, version) if version else None

    def history(self, kind: Kind) -> list[str]:
        """The versions a rollback goes back through, the next one first."""
        return list(reversed(self._read().history[check_kind(kind)]))

    def events(self) -> list[dict[str, Any]]:
        """What happened to the registry (register, promote, rollback, reject), oldest first."""
        return list(self._read().events)

    def generation(self) -> str:
        """``current.json``'s token, read from one small file after two stats; ``registry.json`` when newer."""
        current_file = self.root / CURRENT_FILE
        try:
            main_mtime = self.registry_file.stat().st_mtime_ns
        except FileNotFoundError:
            return RegistryState().token()
        except OSError as exc:
            raise RegistryError(f"{self.registry_file}: cannot read the registry ({exc.strerror})") from exc
        try:
            if current_file.stat().st_mtime_ns >= main_mtime:
                data = json.loads(current_file.read_text(encoding="utf-8"))
                if isinstance(data, dict) and isinstance(data.get("token"), str):
                    return data["token"]
        except (OSError, ValueError):
            pass  # missing, torn by hand or unreadable: registry.json is the truth
        return self._read().token()

    # -- writing (under the lock) ------------------------------------------------------------------------

    def register(
        self,
        kind: Kind,
        artefact_dir: Path,
        *,
        parent: str | None = None,
        metrics: Mapping[str, float] | None = None,
        report: str | None = None,
        gate: Mapping[str, Any] | None = None,
        note: str = "",
    ) -> VersionEntry:
        kind = check_kind(kind)
        source = Path(artefact_dir).expanduser()
        manifest, version, created = self._validate(kind, source, f"cannot register {source}")
        metric_values = self._metrics(metrics)
        with self._locked():
            state = self._load()
            held = state.find(kind, version)
            if held is not None:
                return self._same_or_refuse(held, manifest, source)
            dest = self.root / KIND_DIRS[kind] / version
            self._copy_in(kind, source, dest, manifest)
            entry = VersionEntry(
                kind=kind, version=version, status="candidate", path=dest, created=created, registered=utc_now(),
                parent=parent, data_fingerprint=(manifest.get("data_fingerprint") or None) if kind == "model" else None,
                metrics=metric_values, report=str(report) if report is not None else None,
                gate=dict(gate) if gate is not None else None, note=note,
            )
            state.entries.append(entry)
            state.seals[(kind, version)] = sha256_file(dest / manifest_name(kind))
            state.log("register", entry, note=note)
            try:
                self._save(state)
            except BaseException:
                shutil.rmtree(dest, ignore_errors=True)  # not listed: leave no orphan behind
                raise
            log.info("registered %s %s in %s", describe(kind), version, self.root)
            return entry

    def promote(self, kind: Kind, version: str, *, by: str, note: str = "") -> VersionEntry:
        kind = check_kind(kind)
        with self._locked():
            state = self._load()
            entry = self._find(state, kind, version)
            if state.current[kind] == version:
                return entry
            self._verify(state, entry, f"cannot promote {describe(kind)} {version}")
            previous = state.find(kind, state.current[kind]) if state.current[kind] else None
            history = state.history[kind]
            if version in history:
                history.remove(version)
            if previous is not None:
                previous.status = "retired"
                history.append(previous.version)
            entry.status, entry.promoted_by, entry.promoted_at = "promoted", by, utc_now()
            _add_note(entry, note)
            state.current[kind] = version
            state.generation += 1
            state.log("promote", entry, by, note)
            self._save(state)
            log.info("promoted %s %s in %s (by %s)", describe(kind), version, self.root, by)
            return entry

    def rollback(self, kind: Kind, *, by: str) -> VersionEntry:
        kind = check_kind(kind)
        with self._locked():
            state = self._load()
            history = state.history[kind]
            if not history:
                now = state.current[kind]
                raise UnknownVersionError(
                    f"{self.root}: no earlier {describe(kind)} to roll back to"
                    + (f" (the current version {now} is the first one promoted)" if now else " (none was promoted)")
                )
            target = self._find(state, kind, history[-1])
            self._verify(state, target, f"cannot roll back to {describe(kind)} {target.version}")
            history.pop()
            rolled_back = state.find(kind, state.current[kind]) if state.current[kind] else None
            if rolled_back is not None:
                rolled_back.status = "retired"
            target.status, target.promoted_by, target.promoted_at = "promoted", by, utc_now()
            state.current[kind] = target.version
            state.generation += 1
            state.log("rollback", target, by, f"from {rolled_back.version}" if rolled_back else "")
            self._save(state)
            log.info("rolled %s back to %s in %s (by %s)", describe(kind), target.version, self.root, by)
            return target

    def reject(self, kind: Kind, version: str, note: str) -> VersionEntry:
        kind = check_kind(kind)
        with self._locked():
            state = self._load()
            entry = self._find(state, kind, version)
            if state.current[kind] == version:
                raise RegistryError(f"{self.root}: {describe(kind)} {version} is the current version and cannot be "
                                    f"rejected; promote another version or roll back first ({UNCHANGED})")
            entry.status = "rejected"
            _add_note(entry, note)
            if version in state.history[kind]:
                state.history[kind].remove(version)  # never rolled back to
            state.log("reject", entry, note=note)
            self._save(state)
            return entry

    # -- helpers -----------------------------------------------------------------------------------------

    def _find(self, state: RegistryState, kind: Kind, version: str) -> VersionEntry:
        entry = state.find(kind, version)
        if entry is None:
            raise UnknownVersionError(f"{self.root}: no {describe(kind)} version {version!r} in the registry "
                                      f"(see `csbot models list --kind {kind}`)")
        return entry

    @staticmethod
    def _metrics(metrics: Mapping[str, float] | None) -> dict[str, float]:
        values: dict[str, float] = {}
        for name, value in (metrics or {}).items():
            if not isinstance(name, str) or isinstance(value, bool) or not isinstance(value, int | float):
                raise RegistryError(f"metric {name!r}: expected a name and a number, got {value!r}")
            values[name] = float(value)
        return values

    @staticmethod
    def _validate(kind: Kind, root: Path, what: str) -> tuple[dict[str, Any], str, str]:
        """The manifest, version and creation time of the artefact in ``root`` once its files are verified."""
        if not root.is_dir():
            raise RegistryError(f"{what}: no such directory")
        manifest_path = root / manifest_name(kind)
        if not manifest_path.is_file():
            other = next((k for k in KINDS if k != kind and (root / manifest_name(k)).is_file()), None)
            hint = (f"it holds {manifest_name(other)}: a {describe(other)} (kind {other!r})" if other
                    else f"no {manifest_name(kind)} in it")
            raise RegistryError(f"{what}: not a csbot {describe(kind)}, {hint}")
        try:
            manifest, info = read_manifest(manifest_path, MANIFEST_KINDS[kind], describe(kind),
                                           "save it again with this csbot", ArtefactManifest)
            checksums = manifest.get("checksums") or {}
            if not checksums:
                raise ArtefactError("the manifest lists no checksums, so its files cannot be verified; save the "
                                    "artefact again with this csbot", manifest_path)
            check_files(root, manifest_path, checksums, verify=True)
        except ArtefactError as exc:
            raise RegistryError(f"{what}: {exc}") from exc
        return manifest, check_version_name(info.version), info.created_iso

    def _verify(self, state: RegistryState, entry: VersionEntry, what: str) -> None:
        """The registered copy of ``entry`` is intact: its manifest as registered, every file as it lists."""
        kind = entry.kind
        _, version, _ = self._validate(kind, entry.path, f"{what} ({UNCHANGED})")
        seal = state.seals.get((kind, entry.version))
        manifest_path = entry.path / manifest_name(kind)
        if version != entry.version or (seal is not None and sha256_file(manifest_path) != seal):
            raise RegistryError(f"{what} ({UNCHANGED}): {manifest_path}: the manifest was changed after the "
                                "version was registered; register the artefact again")

    def _same_or_refuse(self, held: VersionEntry, manifest: Mapping[str, Any], source: Path) -> VersionEntry:
        """``held`` when ``source`` has the same files (checksums) as it; RegistryError otherwise."""
        try:
            held_manifest = json.loads((held.path / manifest_name(held.kind)).read_text(encoding="utf-8"))
            held_sums = held_manifest.get("checksums")
        except (OSError, ValueError, AttributeError):
            held_sums = None
        if held_sums == manifest.get("checksums"):
            log.info("%s %s is already registered with the same files", describe(held.kind), held.version)
            return held
        raise RegistryError(f"cannot register {source}: {self.root} already holds {describe(held.kind)} version "
                            f"{held.version} with other files (different checksums); save the artefact again so "
                            f"it gets a new version ({UNCHANGED})")

    def _copy_in(self, kind: Kind, source: Path, dest: Path, manifest: Mapping[str, Any]) -> None:
        """Copy ``source`` to a hidden temp directory beside ``dest``, verify the copy, rename it to ``dest``."""
        parent = dest.parent
        tmp = parent / f".{dest.name}.tmp-{secrets.token_hex(4)}"
        try:
            parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(source, tmp, symlinks=False)
            copied, _, _ = self._validate(kind, tmp, f"cannot register {source}: the copy in {self.root}")
            if copied.get("checksums") != manifest.get("checksums"):
                raise RegistryError(f"cannot register {source}: the artefact changed while it was copied; try again "
                                    f"when nothing is writing it ({UNCHANGED})")
            if dest.exists():  # left by a crash after the rename, before registry.json listed it
                log.warning("removing %s: an unlisted copy left by an interrupted registration", dest)
                shutil.rmtree(dest)
            os.rename(tmp, dest)
        except OSError as exc:
            raise RegistryError(f"cannot register {source}: copying it into {parent} failed ({exc}); "
                                f"{UNCHANGED}") from exc
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


__all__ = ["CURRENT_FILE", "KIND_DIRS", "LOCK_FILE", "REGISTRY_FILE", "DirectoryRegistry", "generation_token"]
