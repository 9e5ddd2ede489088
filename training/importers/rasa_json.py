"""Rasa NLU training data in the legacy JSON format (``rasa_nlu_data.common_examples``)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from csbot.datafiles import has_suffix, read_head
from csbot.errors import DataError, EntitySpanError
from csbot.strict_json import json_line
from nlu.schema import EntitySpan, Example

from .base import Importer, check_labels, check_spans, load_json

logger = logging.getLogger(__name__)

_MARKER = re.compile(r'"rasa_nlu_data"\s*:')
_IGNORED = ("entity_synonyms", "regex_features", "lookup_tables")


class RasaJsonImporter(Importer):
    """Rasa NLU JSON; an entity ``value`` that differs from its span (a synonym) is replaced by the span."""

    name = "rasa_json"

    def sniff(self, path: Path) -> bool:
        """A ``*.json`` file whose content has a ``"rasa_nlu_data"`` key near the start."""
        return has_suffix(path, ".json") and bool(_MARKER.search(read_head(path)))

    def load(self, path: Path, selector: str | None, options: Mapping[str, Any]) -> list[Example]:
        """Read ``common_examples``; errors name the file, the record's first line and its index."""
        text, data = load_json(path)
        nlu = data.get("rasa_nlu_data") if isinstance(data, dict) else None
        if not isinstance(nlu, dict):
            raise DataError("expected an object with a 'rasa_nlu_data' object", path, json_line(text, []))
        records = nlu.get("common_examples", [])
        if not isinstance(records, list):
            raise DataError(
                "'rasa_nlu_data.common_examples' must be a list",
                path,
                json_line(text, ["rasa_nlu_data", "common_examples"]),
            )
        for key in _IGNORED:
            if nlu.get(key):
                logger.info("%s: ignoring rasa_nlu_data.%s (csbot does not use it)", path, key)
        examples = []
        synonyms: list[str] = []
        for index, record in enumerate(records):
            examples.append(self._record(record, index, path, text, synonyms))
        empty = next((i for i, example in enumerate(examples) if not example.intents), None)
        if empty is not None and not any(len(example.intents) > 1 for example in examples):
            line = json_line(text, ["rasa_nlu_data", "common_examples", empty])
            check_labels([(examples[empty], path, line)])
        if synonyms:
            logger.info(
                "%s: %d entity values differ from their text span (Rasa synonyms); kept the text, e.g. %s",
                path,
                len(synonyms),
                synonyms[0],
            )
        return examples

    def _record(self, record: Any, index: int, path: Path, text: str, synonyms: list[str]) -> Example:
        def fail(reason: str, error: type[DataError] = DataError) -> DataError:
            line = json_line(text, ["rasa_nlu_data", "common_examples", index])
            return error(f"common_examples[{index}]: {reason}", path, line)

        if not isinstance(record, dict):
            raise fail("expected an object")
        utterance = record.get("text")
        if not isinstance(utterance, str):
            raise fail("missing 'text'" if "text" not in record else "'text' is not a string")
        if not utterance.strip():
            raise fail("'text' is empty")
        intent = record.get("intent") or ""
        if not isinstance(intent, str):
            raise fail("'intent' is not a string")
        raw_entities = record.get("entities") or []
        if not isinstance(raw_entities, list):
            raise fail("'entities' is not a list")
        entities = []
        for number, raw in enumerate(raw_entities):
            if not isinstance(raw, dict) or not {"start", "end", "entity"} <= raw.keys():
                raise fail(f"entity {number} needs 'start', 'end' and 'entity'")
            start, end, name = raw["start"], raw["end"], raw["entity"]
            if (
                not (isinstance(start, int) and isinstance(end, int))
                or isinstance(start, bool)
                or isinstance(end, bool)
            ):
                raise fail(f"entity {number}: 'start' and 'end' must be integers")
            if not 0 <= start < end <= len(utterance):
                raise fail(
                    f"entity {name!r} span [{start}, {end}) does not fit the text (length {len(utterance)})",
                    EntitySpanError,
                )
            surface = utterance[start:end]
            stated = raw.get("value", surface)
            if stated != surface:
                synonyms.append(f"{surface!r} (stated {stated!r}) in common_examples[{index}]")
            entities.append(EntitySpan(start, end, str(name), surface))
        entities.sort(key=lambda e: e.start)
        example = Example(utterance, intent, entities)
        line = (
            json_line(text, ["rasa_nlu_data", "common_examples", index]) if example.span_problem() else None
        )
        return check_spans(example, path, line, f"common_examples[{index}]: ")
