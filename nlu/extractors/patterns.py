"""Entities by a shop's own regexes and lookup tables, and the synonyms of entity values: the patterns file.

A patterns file (YAML; ``csbot`` writes one from Rasa's ``regex:``, ``lookup:`` and ``synonym:`` data)::

    entities:
      account_type:
        regex: ['\\b(savings|checking)\\b']        # Python regexes, matched case-insensitively
        lookup: [savings, checking, credit card]  # whole words, case-insensitive, the longest first
    synonyms:
      credit: [cc, credit card, creditcard]       # canonical value: its variants (case-insensitive, whole value)

A regex's entity is its whole match (``group(0)``). Regexes run with the ``regex`` module and a timeout of
:data:`REGEX_TIMEOUT_SECONDS` for all of a message's matches: a pattern that backtracks badly on some message
("(a|a)+$") finds nothing in it, is named in a warning, and the turn goes on. Several files merge; a variant
given two canonical values is an error. Every problem is a :class:`~csbot.errors.DataError` naming the file,
the key (``entities.account_type.regex[0]``) and its line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import regex
import yaml

from csbot.config import read_yaml
from csbot.errors import DataError
from nlu.extractors.base import EntityExtractor
from nlu.schema import ParsedEntity

log = logging.getLogger(__name__)

#: All matches of one pattern in one message are cut off after this long (seconds).
REGEX_TIMEOUT_SECONDS = 0.05

_ENTITY_KEYS = ("regex", "lookup")


@dataclass
class PatternSet:
    """The contents of one or more patterns files.

    ``regexes`` and ``lookups`` map an entity name to its regexes and lookup entries; ``synonyms`` maps a
    variant (case-folded, spaces collapsed) to its canonical value.
    """

    regexes: dict[str, list[str]] = field(default_factory=dict)
    lookups: dict[str, list[str]] = field(default_factory=dict)
    synonyms: dict[str, str] = field(default_factory=dict)

    def merge(self, other: PatternSet, path: Path | None = None) -> None:
        """Add ``other``'s patterns to these; a variant with two canonical values is a :class:`DataError`."""
        for name, patterns in other.regexes.items():
            self.regexes.setdefault(name, []).extend(p for p in patterns if p not in self.regexes[name])
        for name, entries in other.lookups.items():
            self.lookups.setdefault(name, []).extend(e for e in entries if e not in self.lookups[name])
        for variant, canonical in other.synonyms.items():
            known = self.synonyms.get(variant)
            if known is not None and known != canonical:
                raise DataError(f"synonyms: {variant!r} is a variant of both {known!r} and {canonical!r}", path)
            self.synonyms[variant] = canonical

    def synonym(self, value: str) -> str | None:
        """The canonical value of ``value`` when it is a variant (case-insensitive, whole value), else None."""
        return self.synonyms.get(synonym_key(value))


def synonym_key(value: str) -> str:
    """How a value is looked up among synonyms: case-folded, runs of spaces collapsed."""
    return " ".join(value.casefold().split())


def load_patterns(path: str | Path) -> PatternSet:
    """Read one patterns file; any problem is a :class:`DataError` naming the file, the key and the line."""
    path = Path(path)
    data, root = read_yaml(path, DataError, nodes=True, what="entity patterns file")
    lines = _Lines(root)
    if data is None:
        return PatternSet()
    if not isinstance(data, dict):
        raise DataError("a patterns file is a mapping with the keys entities: and synonyms:", path, lines.of())
    out = PatternSet()
    for key in data:
        if key not in ("entities", "synonyms"):
            raise DataError(f"{key}: unknown key; expected entities or synonyms", path, lines.of(key))
    entities = data.get("entities") or {}
    if not isinstance(entities, dict):
        raise DataError("entities: must be a mapping of entity names", path, lines.of("entities"))
    for name, spec in entities.items():
        where = f"entities.{name}"
        if not isinstance(name, str) or not name:
            raise DataError(f"{where}: an entity name must be a non-empty string", path, lines.of("entities", name))
        if not isinstance(spec, dict) or not spec:
            raise DataError(f"{where}: must be a mapping with regex: and/or lookup:", path, lines.of("entities", name))
        for key in spec:
            if key not in _ENTITY_KEYS:
                raise DataError(f"{where}.{key}: unknown key; expected regex or lookup", path,
                                lines.of("entities", name, key))
        for key in _ENTITY_KEYS:
            if key not in spec:
                continue
            values = _strings(spec[key], f"{where}.{key}", path, lines.of("entities", name, key))
            for i, value in enumerate(values):
                if key == "regex":
                    problem = _regex_problem(value)
                    if problem:
                        raise DataError(f"{where}.regex[{i}]: invalid regex {value!r}: {problem}", path,
                                        lines.of("entities", name, key, i))
            (out.regexes if key == "regex" else out.lookups)[name] = values
    synonyms = data.get("synonyms") or {}
    if not isinstance(synonyms, dict):
        raise DataError("synonyms: must be a mapping of canonical values to lists of variants", path,
                        lines.of("synonyms"))
    for canonical, variants in synonyms.items():
        where = f"synonyms.{canonical}"
        if not isinstance(canonical, str | int | float) or isinstance(canonical, bool) or str(canonical) == "":
            raise DataError(f"{where}: a canonical value must be a non-empty string", path, lines.of("synonyms", canonical))
        one = PatternSet(synonyms={synonym_key(v): str(canonical)
                                   for v in _strings(variants, where, path, lines.of("synonyms", canonical))})
        try:
            out.merge(one)
        except DataError as exc:
            raise DataError(exc.reason, path, lines.of("synonyms", canonical)) from exc
    return out


def load_pattern_files(paths: Iterable[str | Path]) -> PatternSet:
    """Read and merge several patterns files, in order."""
    merged = PatternSet()
    for path in paths:
        merged.merge(load_patterns(path), Path(path))
    return merged


def _strings(value: Any, where: str, path: Path, line: int | None) -> list[str]:
    """A list of non-empty strings (numbers become strings: a lookup of codes ``[101, 102]``)."""
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: must be a non-empty list of strings", path, line)
    out = []
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, str | int | float) or not str(item).strip():
            raise DataError(f"{where}[{i}]: must be a non-empty string, not {item!r}", path, line)
        out.append(str(item))
    return out


def _regex_problem(pattern: str) -> str | None:
    try:
        regex.compile(pattern, regex.IGNORECASE | regex.V0)
    except (regex.error, ValueError, OverflowError, RecursionError) as exc:
        return str(exc)
    return None


class _Lines:
    """The 1-based line of a key of the YAML document (None when unknown)."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.root = root

    def of(self, *keys: Any) -> int | None:
        node, line = self.root, (self.root.start_mark.line + 1 if self.root is not None else None)
        for key in keys:
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(key):
                        node, line = value_node, key_node.start_mark.line + 1
                        break
                else:
                    return line
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
                node = node.value[key]
                line = node.start_mark.line + 1
            else:
                return line
        return line


class PatternExtractor(EntityExtractor):
    """Finds the entities of a :class:`PatternSet`: its regexes' whole matches and its lookup entries."""

    name = "pattern"

    def __init__(self, patterns: PatternSet, timeout: float = REGEX_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self.compiled: list[tuple[str, str, regex.Pattern[str]]] = []
        for entity, sources in patterns.regexes.items():
            for source in sources:
                self.compiled.append((entity, source, regex.compile(source, regex.IGNORECASE | regex.V0)))
        for entity, entries in patterns.lookups.items():
            self.compiled.append((entity, f"lookup of {entity}", lookup_pattern(entries)))

    def extract(self, text: str, now: datetime) -> list[ParsedEntity]:
        found = []
        for entity, source, pattern in self.compiled:
            try:
                for match in pattern.finditer(text, timeout=self.timeout):
                    if match.end() > match.start():
                        found.append(self.entity(entity, text, match.start(), match.end()))
            except TimeoutError:
                log.warning("entity %s: its pattern %r took over %g s on a %d-character message; the rest of its "
                            "matches are skipped", entity, source, self.timeout, len(text))
        found.sort(key=lambda e: (e.start, -e.end))
        return found


def lookup_pattern(entries: Iterable[str]) -> regex.Pattern[str]:
    """One pattern for a lookup table: whole words, case-insensitive, the longest entry first, any run of spaces
    matching the spaces of an entry."""
    words = sorted({" ".join(e.split()) for e in entries if e.strip()}, key=lambda e: (-len(e), e))
    alternatives = "|".join(r"\s+".join(regex.escape(part) for part in w.split(" ")) for w in words)
    return regex.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", regex.IGNORECASE | regex.V0)


__all__ = ["PatternExtractor", "PatternSet", "REGEX_TIMEOUT_SECONDS", "load_pattern_files", "load_patterns",
           "lookup_pattern", "synonym_key"]
