"""What every saved artefact (NLU model, Q&A index) shares: its manifest's identity, checksums, JSON files,
atomic directory swaps.

Each artefact directory holds a JSON manifest (``csbot-model.json``, ``csbot-index.json``) with::

    kind           "nlu-model" | "qa-index"
    format         the artefact format number (:data:`csbot.ARTEFACT_FORMAT`); a loader reads only its own
    csbot_version  the csbot that wrote it
    created        when, ISO-8601 UTC ("2026-11-29T17:50:12Z")
    version        a unique, sortable id: the creation time and a short hash of the content
                   ("20261129T175012Z-3fa9c1d2")

:func:`read_manifest` checks kind and format and returns the manifest with its :class:`ArtefactInfo`;
manifests written before versions existed get one derived from their creation time and content, so the
same directory always reports the same version.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from csbot import ARTEFACT_FORMAT, __version__
from csbot.errors import ArtefactError, IncompatibleArtefactError

#: Manifest keys that describe the manifest itself and so take no part in the content hash.
_IDENTITY_KEYS = ("version", "created")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path, data: Any) -> None:
    """Pretty, sorted JSON with a trailing newline; parents are created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


def read_json(path: Path, missing_hint: str = "the directory is incomplete") -> Any:
    """Parsed JSON; a missing or unparsable file raises :class:`ArtefactError` naming it."""
    if not path.is_file():
        raise ArtefactError(f"missing file ({missing_hint})", path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtefactError(f"corrupt JSON: {exc}", path) from exc


def utc_now() -> str:
    """The current UTC time as an ISO-8601 string, for manifests."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def parse_created(value: str) -> datetime:
    """A manifest's ``created`` as an aware UTC datetime; ValueError when it is not ISO-8601."""
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:  # written as UTC without a zone
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def content_hash(manifest: Mapping[str, Any]) -> str:
    """Short hex hash of a manifest's content (checksums, fingerprint ...), its identity keys left out."""
    content = {k: v for k, v in manifest.items() if k not in _IDENTITY_KEYS}
    blob = json.dumps(content, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:8]


def make_version(created: datetime, manifest: Mapping[str, Any]) -> str:
    """The version id of an artefact: its UTC creation time and the hash of its manifest's content."""
    return f"{created.astimezone(UTC):%Y%m%dT%H%M%SZ}-{content_hash(manifest)}"


def stamp(manifest: dict[str, Any]) -> dict[str, Any]:
    """Add ``format``, ``csbot_version``, ``created`` and ``version`` to a new manifest (in place) and return it."""
    manifest.setdefault("format", ARTEFACT_FORMAT)
    manifest.setdefault("csbot_version", __version__)
    manifest.setdefault("created", utc_now())
    manifest["version"] = make_version(parse_created(manifest["created"]), manifest)
    return manifest


@dataclass(frozen=True)
class ArtefactInfo:
    """Who a saved artefact is: its kind, version, creation time, format and manifest file."""

    kind: str
    version: str
    created: datetime
    format: int
    path: Path
    csbot_version: str = ""

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any], path: str | Path) -> ArtefactInfo:
        """The identity a manifest records; an older manifest without a version gets a derived one."""
        path = Path(path)
        raw_created = manifest.get("created")
        if raw_created is None:  # older than every csbot that wrote manifests; use the file's time
            seconds = int(path.stat().st_mtime) if path.exists() else 0
            created = datetime.fromtimestamp(seconds, UTC)
        else:
            try:
                created = parse_created(str(raw_created))
            except ValueError as exc:
                raise ArtefactError(f"invalid 'created' time {raw_created!r}: {exc}", path) from exc
        fmt = manifest.get("format")
        version = manifest.get("version")
        if not version:
            version = make_version(created, manifest)
        return cls(
            kind=str(manifest.get("kind", "")),
            version=str(version),
            created=created,
            format=fmt if isinstance(fmt, int) else 0,
            path=path,
            csbot_version=str(manifest.get("csbot_version", "")),
        )

    @property
    def created_iso(self) -> str:
        """``created`` as an ISO-8601 UTC string (``2026-11-29T17:50:12Z``)."""
        return f"{self.created:%Y-%m-%dT%H:%M:%SZ}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for transcripts, health checks and ``csbot models``."""
        return {"kind": self.kind, "version": self.version, "created": self.created_iso, "format": self.format,
                "path": str(self.path), "csbot_version": self.csbot_version}


def read_manifest(path: str | Path, kind: str, what: str, rebuild: str) -> tuple[dict[str, Any], ArtefactInfo]:
    """The manifest at ``path`` and its :class:`ArtefactInfo`, after checking its kind and format.

    ``what`` names the artefact in messages ("NLU model", "Q&A index"); ``rebuild`` says how to get one this
    csbot reads ("retrain the model with this version"). A manifest of another format raises
    :class:`IncompatibleArtefactError` naming the file, the format it was saved in and the one this csbot reads.
    """
    path = Path(path)
    manifest = read_json(path, f"not a csbot {what}, or an incomplete one; {rebuild}")
    if not isinstance(manifest, dict) or manifest.get("kind") != kind:
        raise ArtefactError(f"not a csbot {what} manifest", path)
    saved = manifest.get("format")
    if saved != ARTEFACT_FORMAT:
        raise IncompatibleArtefactError(
            f"{what} saved in artefact format {saved} by csbot {manifest.get('csbot_version', '?')}; "
            f"this csbot {__version__} reads artefact format {ARTEFACT_FORMAT}: {rebuild}",
            path,
        )
    return manifest, ArtefactInfo.from_manifest(manifest, path)


@contextlib.contextmanager
def atomic_directory(out_dir: str | Path) -> Iterator[Path]:
    """Yield a sibling temp dir to fill; on success it replaces ``out_dir``, on failure it is removed.

    Readers see either the old directory or the complete new one, never a half-written mix.
    """
    out = Path(out_dir).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            old = out.with_name(f".{out.name}.old-{time.time_ns()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
