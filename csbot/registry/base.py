"""The model registry's interface and data types: :class:`Registry`, :class:`VersionEntry`, the kinds.

A registry holds versions of two kinds of artefact, each copied in whole and checked against its manifest:

==========  ====================  ===========================
kind        manifest              manifest ``kind``
==========  ====================  ===========================
``model``   ``csbot-model.json``  ``nlu-model``
``index``   ``csbot-index.json``  ``qa-index``
==========  ====================  ===========================

A version's life: ``candidate`` when registered; ``promoted`` while it is the current one of its kind (one at a
time); ``retired`` once another was promoted over it or it was rolled back; ``rejected`` when an operator or the
gate turned it down. Each kind keeps a history of the versions promoted before the current one, so
:meth:`Registry.rollback` goes back one step at a time.

This module knows nothing of ``nlu``, ``retrieval``, ``bot`` or ``training``: artefacts are validated with
:mod:`csbot.artefacts` alone.
"""

from __future__ import annotations

import abc
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from csbot.artefacts import ARTEFACT_KINDS
from csbot.errors import RegistryError, UnknownVersionError

if TYPE_CHECKING:
    from csbot.registry.config import RegistryConfig

Kind = Literal["model", "index"]
Status = Literal["candidate", "promoted", "retired", "rejected"]

#: Every kind, in the order listings show them.
KINDS: tuple[Kind, ...] = get_args(Kind)
#: Every status a version can have.
STATUSES: tuple[Status, ...] = get_args(Status)
#: The manifest ``kind`` of each registry kind (see :data:`csbot.artefacts.ARTEFACT_KINDS`).
MANIFEST_KINDS: dict[Kind, str] = {"model": "nlu-model", "index": "qa-index"}

#: What a version may be called: it names a directory, so no separators, no leading dot.
_VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,199}")


def check_kind(kind: str) -> Kind:
    """``kind`` when it is a registry kind; :class:`RegistryError` listing the kinds otherwise."""
    if kind not in KINDS:
        raise RegistryError(f"unknown artefact kind {kind!r}; known: {', '.join(KINDS)}")
    return kind  # type: ignore[return-value]


def check_version_name(version: str) -> str:
    """``version`` when it can name a directory in the registry; :class:`RegistryError` otherwise."""
    if not isinstance(version, str) or not _VERSION_NAME.fullmatch(version):
        raise RegistryError(f"version {version!r} cannot be registered: a version is letters, digits and . _ + - "
                            "(starting with a letter or digit, at most 200 characters); save the artefact again")
    return version


def describe(kind: Kind) -> str:
    """The artefact a kind stands for, in words ("NLU model", "Q&A index")."""
    return ARTEFACT_KINDS[MANIFEST_KINDS[kind]].what


def manifest_name(kind: Kind) -> str:
    """The manifest file of an artefact of ``kind`` (``csbot-model.json``, ``csbot-index.json``)."""
    return ARTEFACT_KINDS[MANIFEST_KINDS[kind]].manifest


def artefact_kind(artefact_dir: str | Path) -> Kind:
    """The kind of the artefact in ``artefact_dir``, from its manifest; :class:`RegistryError` when it has none."""
    root = Path(artefact_dir)
    if not root.is_dir():
        raise RegistryError(f"{root}: no such artefact directory")
    found: list[Kind] = []
    for kind in KINDS:
        path = root / manifest_name(kind)
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            raise RegistryError(f"{path}: cannot read the manifest ({exc})") from exc
        if isinstance(manifest, dict) and manifest.get("kind") == MANIFEST_KINDS[kind]:
            found.append(kind)
    if len(found) != 1:
        names = " or ".join(manifest_name(kind) for kind in KINDS)
        why = "holds manifests of both kinds" if found else f"has no csbot manifest ({names})"
        raise RegistryError(f"{root}: not a csbot NLU model or Q&A index: it {why}; give the kind with --kind")
    return found[0]


@dataclass
class VersionEntry:
    """One version of an artefact in a registry, with what is known about it."""

    kind: Kind
    version: str  # the artefact manifest's "version"
    status: Status  # "promoted" = the current one; a previously promoted one becomes "retired"
    path: Path  # the artefact directory inside the registry
    created: str  # manifest "created"
    registered: str  # ISO UTC time of registration
    parent: str | None = None  # the version it was retrained from
    data_fingerprint: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    report: str | None = None  # path of the comparison report directory, if any
    gate: dict[str, Any] | None = None  # the gate decision recorded at registration ({"passed": bool, ...})
    note: str = ""
    promoted_by: str | None = None
    promoted_at: str | None = None

    @property
    def is_current(self) -> bool:
        return self.status == "promoted"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``path`` as a string)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["path"] = str(self.path)
        data["metrics"] = dict(self.metrics)
        data["gate"] = dict(self.gate) if self.gate is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], root: Path) -> VersionEntry:
        """An entry from :meth:`to_dict`'s form; a relative ``path`` is taken relative to ``root``.

        Unknown keys are ignored (a newer csbot may add some); a missing or mistyped field raises TypeError
        (ValueError for an unknown kind or status) naming it.
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"an entry must be an object, not {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        for name in ("kind", "version", "status", "path", "created", "registered"):
            if not isinstance(values.get(name), str):
                raise TypeError(f"entry {data.get('version')!r}: {name!r} must be a string")
        if values["kind"] not in KINDS:
            raise ValueError(f"entry {values['version']!r}: unknown kind {values['kind']!r}")
        if values["status"] not in STATUSES:
            raise ValueError(f"entry {values['version']!r}: unknown status {values['status']!r}")
        for name in ("parent", "data_fingerprint", "report", "promoted_by", "promoted_at"):
            if values.get(name) is not None and not isinstance(values[name], str):
                raise TypeError(f"entry {values['version']!r}: {name!r} must be a string or null")
        if not isinstance(values.get("note", ""), str):
            raise TypeError(f"entry {values['version']!r}: 'note' must be a string")
        metrics = values.get("metrics") or {}
        if not isinstance(metrics, Mapping) or not all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) for k, v in metrics.items()
        ):
            raise TypeError(f"entry {values['version']!r}: 'metrics' must map names to numbers")
        gate = values.get("gate")
        if gate is not None and not isinstance(gate, Mapping):
            raise TypeError(f"entry {values['version']!r}: 'gate' must be an object or null")
        path = Path(values["path"])
        values.update(
            path=path if path.is_absolute() else Path(root) / path,
            metrics={k: float(v) for k, v in metrics.items()},
            gate=dict(gate) if gate is not None else None,
        )
        return cls(**values)


def gate_refusal(entry: VersionEntry) -> list[str] | None:
    """The reasons the gate recorded for refusing ``entry`` (``passed: false``), or None when it did not refuse."""
    gate = entry.gate
    if not gate or gate.get("passed", True) is not False:
        return None
    reasons = gate.get("reasons") or []
    if isinstance(reasons, str):
        reasons = [reasons]
    return [str(reason) for reason in reasons] or ["the gate did not pass (no reason recorded)"]


class Registry(abc.ABC):
    """Versions of NLU models and Q&A indexes: registered as candidates, one promoted per kind, rolled back.

    Backends are built by :func:`csbot.registry.create_registry` as ``Backend(root, config)``. Reading
    (:meth:`get`, :meth:`list`, :meth:`current`, :meth:`generation`) never needs write access.
    """

    root: Path

    def __init__(self, root: str | Path, config: RegistryConfig | None = None) -> None:
        self.root = Path(root).expanduser()
        self.config = config

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"

    @abc.abstractmethod
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
        """Copy a finished artefact into the registry as a candidate (validated first: manifest kind, checksums).

        Registering a version already held returns the existing entry unchanged if the files are identical (same
        checksums), else RegistryError."""

    @abc.abstractmethod
    def get(self, kind: Kind, version: str) -> VersionEntry:
        """The entry of ``version``; :class:`UnknownVersionError` when the registry does not hold it."""

    @abc.abstractmethod
    def list(self, kind: Kind) -> list[VersionEntry]:
        """Every version of ``kind``, newest registration first."""

    @abc.abstractmethod
    def current(self, kind: Kind) -> VersionEntry | None:
        """The promoted version of ``kind``, or None when none is."""

    @abc.abstractmethod
    def promote(self, kind: Kind, version: str, *, by: str, note: str = "") -> VersionEntry:
        """Make ``version`` current (its files are verified first: a corrupt one raises RegistryError and nothing
        changes); the previous current becomes retired and is pushed on the rollback history."""

    @abc.abstractmethod
    def rollback(self, kind: Kind, *, by: str) -> VersionEntry:
        """Back to the version promoted before the current one (UnknownVersionError when there is none); the
        rolled-back one becomes retired."""

    @abc.abstractmethod
    def reject(self, kind: Kind, version: str, note: str) -> VersionEntry:
        """Mark ``version`` rejected with ``note`` saying why (the current version cannot be rejected)."""

    @abc.abstractmethod
    def generation(self) -> str:
        """A cheap token that changes whenever the current version of any kind changes (a server polls it every
        few seconds)."""

    def resolve(self, kind: Kind, version: str | None = None) -> VersionEntry:
        """``version`` or, when None, the current one (UnknownVersionError naming `csbot models promote` when
        nothing is promoted)."""
        if version is not None:
            return self.get(kind, version)
        entry = self.current(kind)
        if entry is None:
            raise UnknownVersionError(
                f"{self.root}: no {describe(kind)} is promoted in the registry yet; register one and run "
                f"`csbot models promote VERSION --kind {kind}`"
            )
        return entry


__all__ = [
    "KINDS",
    "MANIFEST_KINDS",
    "STATUSES",
    "Kind",
    "Registry",
    "Status",
    "VersionEntry",
    "artefact_kind",
    "check_kind",
    "check_version_name",
    "describe",
    "gate_refusal",
    "manifest_name",
]
