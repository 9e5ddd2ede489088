"""The canonical JSONL format: one ``{"text", "intent", "entities"}`` object per line."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from csbot.errors import DataError
from nlu.schema import Example

from .base import Importer, check_spans, has_suffix, read_text

logger = logging.getLogger(__name__)

_ENTITY_KEYS = ("start", "end", "entity", "value")


class JsonlImporter(Importer):
    """Canonical examples, one JSON object a line; blank lines are skipped, ``intents: [..]`` is accepted."""

    name = "jsonl"

    def sniff(self, path: Path) -> bool:
        """A file named ``*.jsonl`` (or ``*.ndjson``)."""
        return has_suffix(path, ".jsonl", ".ndjson")

    def load(self, path: Path, selector: str | None, options: Mapping[str, Any]) -> list[Example]:
        """Read every line; errors name the file and the 1-based line."""
        examples = []
        for number, line in enumerate(read_text(path).splitlines(), start=1):
            if line.strip():
                examples.append(parse_record(line, path, number))
        return examples


def parse_record(line: str, path: Path, number: int) -> Example:
    """One canonical example from one JSON line, validated against its text."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg} (column {exc.colno})", path, number) from exc
    if not isinstance(data, dict):
        raise DataError(f"expected a JSON object, got {type(data).__name__}", path, number)
    if not isinstance(data.get("text"), str):
        reason = "missing 'text'" if "text" not in data else "'text' is not a string"
        raise DataError(reason, path, number)
    intent = data.get("intent", None)
    if intent is not None and not isinstance(intent, str):
        raise DataError("'intent' is not a string", path, number)
    intents = data.get("intents")
    if (
        "intent" not in data
        and intents is not None
        and not (isinstance(intents, list) and all(isinstance(i, str) for i in intents))
    ):
        raise DataError("'intents' is not a list of strings", path, number)
    entities = data.get("entities") or []
    if not isinstance(entities, list):
        raise DataError("'entities' is not a list", path, number)
    for index, entity in enumerate(entities):
        if not isinstance(entity, dict):
            raise DataError(f"entity {index} is not an object", path, number)
        missing = [key for key in _ENTITY_KEYS if key not in entity]
        if missing:
            raise DataError(f"entity {index} lacks {', '.join(repr(k) for k in missing)}", path, number)
        if not all(isinstance(entity[k], int) and not isinstance(entity[k], bool) for k in ("start", "end")):
            raise DataError(f"entity {index}: 'start' and 'end' must be integers", path, number)
    example = Example.from_dict(data)
    return check_spans(example, path, number)
