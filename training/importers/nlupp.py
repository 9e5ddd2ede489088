"""NLU++ JSON: lists of ``{text, intents?, slots?}``, one file or a folder of ``fold*.json``."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from csbot.datafiles import has_suffix, read_head
from csbot.errors import DataError, EntitySpanError
from csbot.strict_json import json_line
from nlu.schema import MULTI_LABEL_SEPARATOR, EntitySpan, Example

from .base import Importer, check_spans, load_json

logger = logging.getLogger(__name__)

_FOLD = re.compile(r"fold(\d+)\.json")
_SHAPE = re.compile(r"\A\s*\[\s*\{")
_TEXT_KEY = re.compile(r'"text"\s*:')


class NluppImporter(Importer):
    """NLU++; intents joined with ``#`` (none: ``""``), slots become entities; selector picks folds."""

    name = "nlupp"
    takes_selector = True

    def sniff(self, path: Path) -> bool:
        """A folder of ``foldN.json`` files, or a ``*.json`` list of objects with a ``text`` key."""
        if path.is_dir():
            return bool(folds(path))
        if not has_suffix(path, ".json"):
            return False
        head = read_head(path)
        return bool(_SHAPE.match(head) and _TEXT_KEY.search(head))

    def load(self, path: Path, selector: str | None, options: Mapping[str, Any]) -> list[Example]:
        """Read one file, or the selected folds of a folder in fold-number order."""
        if path.is_dir():
            available = folds(path)
            if not available:
                raise DataError("no fold*.json files in this folder", path)
            files = [available[n] for n in parse_folds(selector, available, path)]
        else:
            if selector is not None:
                raise DataError(f"a fold selector ({selector!r}) needs a folder of fold*.json files", path)
            files = [path]
        examples = []
        for file in files:
            examples.extend(load_file(file))
        return examples


def folds(folder: Path) -> dict[int, Path]:
    """The folder's ``foldN.json`` files by fold number, in number order."""
    found = {}
    for child in folder.iterdir():
        match = _FOLD.fullmatch(child.name)
        if match and child.is_file():
            found[int(match.group(1))] = child
    return dict(sorted(found.items()))


def parse_folds(selector: str | None, available: Mapping[int, Path], path: Path) -> list[int]:
    """Fold numbers from a selector of numbers and inclusive ranges (``0-7``, ``8,9``, ``0-2,5``)."""
    if selector is None:
        return list(available)
    listing = ", ".join(map(str, available))
    chosen: list[int] = []
    for part in selector.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match:
            raise DataError(f"bad fold selector {selector!r} (use e.g. 0-7 or 8,9); folds: {listing}", path)
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if high < low:
            raise DataError(f"empty fold range {part.strip()!r} in selector {selector!r}", path)
        chosen.extend(n for n in range(low, high + 1) if n not in chosen)
    missing = [n for n in chosen if n not in available]
    if missing:
        raise DataError(f"no fold {', '.join(map(str, missing))} here; available folds: {listing}", path)
    return sorted(chosen)


def load_file(path: Path) -> list[Example]:
    """The examples of one NLU++ JSON file."""
    text, data = load_json(path)
    if not isinstance(data, list):
        raise DataError("expected a list of {text, intents?, slots?} objects", path, 1)
    return [_record(record, index, path, text) for index, record in enumerate(data)]


def _record(record: Any, index: int, path: Path, source: str) -> Example:
    def fail(reason: str, error: type[DataError] = DataError) -> DataError:
        return error(f"item {index}: {reason}", path, json_line(source, [index]))

    if not isinstance(record, dict):
        raise fail("expected an object")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise fail("missing 'text'" if "text" not in record else "'text' is not a non-empty string")
    intents = record.get("intents") or []
    if not isinstance(intents, list) or not all(isinstance(i, str) and i for i in intents):
        raise fail("'intents' is not a list of names")
    slots = record.get("slots") or {}
    if not isinstance(slots, dict):
        raise fail("'slots' is not an object")
    entities = []
    for name, slot in slots.items():
        span = slot.get("span") if isinstance(slot, dict) else None
        if not (
            isinstance(span, list)
            and len(span) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in span)
        ):
            raise fail(f"slot {name!r} needs a 'span' of two integers")
        start, end = span
        if not 0 <= start < end <= len(text):
            raise fail(
                f"slot {name!r} span [{start}, {end}) does not fit the text (length {len(text)})",
                EntitySpanError,
            )
        surface = text[start:end]
        stated = slot.get("text")
        if stated is not None and stated != surface:
            raise fail(
                f"slot {name!r} span [{start}, {end}) selects {surface!r}, not its text {stated!r}",
                EntitySpanError,
            )
        entities.append(EntitySpan(start, end, str(name), surface))
    entities.sort(key=lambda e: (e.start, e.end))
    example = Example(text, MULTI_LABEL_SEPARATOR.join(intents), entities)
    problem = example.span_problem()
    return check_spans(example, path, json_line(source, [index]) if problem else None, f"item {index}: ")
