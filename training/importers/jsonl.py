"""The canonical JSONL format: one ``{"text", "intent", "entities"}`` object per line."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from csbot.datafiles import has_suffix, jsonl_lines
from csbot.errors import DataError
from csbot.strict_json import loads_json
from nlu.schema import Example

from .base import Importer, check_labels, check_spans

logger = logging.getLogger(__name__)

_ENTITY_KEYS = ("start", "end", "entity", "value")


class JsonlImporter(Importer):
    """Canonical examples, one JSON object a line; blank lines are skipped, ``intents: [..]`` is accepted."""

    name = "jsonl"

    def sniff(self, path: Path) -> bool:
        """A file named ``*.jsonl`` (or ``*.ndjson``)."""
        return has_suffix(path, ".jsonl", ".ndjson")

    def load(self, path: Path, selector: str | None, options: Mapping[str, Any]) -> list[Example]:
        """Read every line (split on ``\\n`` only, see :func:`csbot.datafiles.jsonl_lines`); errors name the
        file and the 1-based line.

        An example without an intent is allowed only in multi-label data (see
        :func:`~training.importers.base.check_labels`): a file where some example has several intents, or
        gives its labels as an ``intents`` list (``"intents": []`` marks an example that has none; the
        canonical writer adds it to such examples, so its files read back).
        """
        labelled = []
        listed = False
        for number, line in jsonl_lines(path):
            example, as_list = parse_line(line, path, number)
            listed = listed or as_list
            labelled.append((example, path, number))
        check_labels(labelled, multi_label=listed)
        return [example for example, _, _ in labelled]


def parse_line(line: str, path: Path, number: int) -> tuple[Example, bool]:
    """One canonical example from one JSON line, and whether it gave its labels as an ``intents`` list."""
    data = loads_json(line, path, number)
    if not isinstance(data, dict):
        raise DataError(f"expected a JSON object, got {type(data).__name__}", path, number)
    if not isinstance(data.get("text"), str):
        reason = "missing 'text'" if "text" not in data else "'text' is not a string"
        raise DataError(reason, path, number)
    if not data["text"].strip():
        raise DataError("'text' is empty", path, number)
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
    return check_spans(example, path, number), isinstance(intents, list)
