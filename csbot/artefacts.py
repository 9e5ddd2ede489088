"""What every saved artefact (NLU model, Q&A index) shares: its manifest's identity and schema, checksums,
JSON files.

Each artefact directory holds a JSON manifest (``csbot-model.json``, ``csbot-index.json``) with::

    kind           "nlu-model" | "qa-index"
    format         the artefact format number (:data:`csbot.ARTEFACT_FORMAT`); a loader reads only its own
    csbot_version  the csbot that wrote it
    created        when, ISO-8601 UTC ("2026-11-29T17:50:12Z")
    version        a unique, sortable id: the creation time and a short hash of the content
                   ("20261129T175012Z-3fa9c1d2")

:func:`read_manifest` checks kind and format and returns the manifest with its :class:`ArtefactInfo`;
manifests written before versions existed get one derived from their creation time and content, so the
same directory always reports the same version. Each manifest is validated against a schema
(:class:`ArtefactManifest` and the subclass of its kind): wrong types, and ``checksums`` entries that are not
relative paths inside the directory, are an :class:`ArtefactError` naming the manifest and the field.

Writing an artefact directory (what may be replaced, the edit lock, the atomic swap) is
:mod:`csbot.artefact_dirs`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from csbot import ARTEFACT_FORMAT, __version__
from csbot.errors import ArtefactError, IncompatibleArtefactError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: edits are serialised within one process only
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

#: Manifest keys that describe the manifest itself and so take no part in the content hash.
_IDENTITY_KEYS = ("version", "created")


@dataclass(frozen=True)
class ArtefactKind:
    """What a kind of artefact is called and where its manifest lies."""

    manifest: str
    what: str
    article: str = "a"


#: Every kind of artefact csbot writes, by the ``kind`` its manifest records.
ARTEFACT_KINDS = {
    "nlu-model": ArtefactKind("csbot-model.json", "NLU model", "an"),
    "qa-index": ArtefactKind("csbot-index.json", "Q&A index"),
}


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


def _relative_member(name: str) -> str:
    """A manifest's file name: a relative path that stays inside the artefact directory."""
    path = PurePosixPath(name)
    if not name or "\\" in name or path.is_absolute() or ".." in path.parts or "\0" in name:
        raise ValueError(f"{name!r} is not a relative path inside the artefact directory")
    if path.parts in ((), (".",)):
        raise ValueError(f"{name!r} names the artefact directory itself, not a file in it")
    return name


#: A file of an artefact as its manifest names it (``model.safetensors``, ``tokenizer/vocab.txt``).
MemberName = Annotated[str, AfterValidator(_relative_member)]


class ArtefactManifest(BaseModel):
    """What every manifest holds, with types; the schema of each kind extends it (extra keys are kept)."""

    model_config = ConfigDict(extra="allow", strict=True)

    kind: str
    format: int
    csbot_version: str = ""
    created: str | None = None
    version: str | None = None
    checksums: dict[MemberName, str] = {}


def _schema_error(exc: ValidationError) -> str:
    """One line per field at fault: ``checksums.'../x': '../x' is not a relative path ...``."""
    parts = []
    for error in exc.errors()[:3]:
        loc = ".".join(str(p) if isinstance(p, int) or str(p).isidentifier() else repr(p)
                       for p in error["loc"] if p != "[key]")
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc or 'manifest'}: {message}")
    more = len(exc.errors()) - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def read_manifest(
    path: str | Path, kind: str, what: str, rebuild: str, schema: type[ArtefactManifest] = ArtefactManifest
) -> tuple[dict[str, Any], ArtefactInfo]:
    """The manifest at ``path`` and its :class:`ArtefactInfo`, after checking its kind, format and schema.

    ``what`` names the artefact in messages ("NLU model", "Q&A index"); ``rebuild`` says how to get one this
    csbot reads ("retrain the model with this version"). A manifest of another format raises
    :class:`IncompatibleArtefactError` naming the file, the format it was saved in and the one this csbot reads;
    one that does not fit ``schema`` (a wrong type, a checksum entry outside the directory) raises
    :class:`ArtefactError` naming the file and the field.
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
    try:
        schema.model_validate(manifest)
    except ValidationError as exc:
        raise ArtefactError(f"invalid manifest: {_schema_error(exc)}; {rebuild}", path) from exc
    return manifest, ArtefactInfo.from_manifest(manifest, path)


def member_path(root: Path, name: str, manifest_path: Path) -> Path:
    """``root / name`` once sure it stays inside ``root`` (symbolic links followed); else ArtefactError."""
    try:
        _relative_member(name)
    except ValueError as exc:
        raise ArtefactError(f"invalid manifest: checksums: {exc}", manifest_path) from None
    path = root / name
    if not path.resolve().is_relative_to(root.resolve()):
        raise ArtefactError(f"{name!r} leads outside the artefact directory (a link?); copy the artefact again",
                            path)
    return path


def check_files(
    root: Path,
    manifest_path: Path,
    checksums: Mapping[str, str],
    *,
    required: Iterable[str] = (),
    verify: bool = True,
    hint: str = "the directory is incomplete",
) -> None:
    """Every required file and every file the checksums name is in ``root``, inside it, and (``verify``) intact."""
    for name in dict.fromkeys([*required, *checksums]):
        path = member_path(root, name, manifest_path)
        if not path.is_file():
            raise ArtefactError(f"missing file ({hint})", path)
        if verify and name in checksums and sha256_file(path) != checksums[name]:
            raise ArtefactError("corrupt or changed file: its checksum does not match the manifest", path)
