"""Q&A as JSON Lines: one ``{"question", "answer", "intent"?, "tags"?, "id"?, "source"?}`` object a line."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from csbot.datafiles import first_line, has_suffix, jsonl_lines
from csbot.errors import DataError
from csbot.strict_json import loads_json
from retrieval.records import QARecord

from .base import QASource, record_from_mapping


class JsonlQASource(QASource):
    """A ``*.jsonl`` file whose first object has ``question`` and ``answer``."""

    name = "qa_jsonl"

    def sniff(self, path: Path) -> bool:
        """The first non-blank line, read whole however long, is an object with a question and an answer."""
        if not has_suffix(path, ".jsonl", ".ndjson"):
            return False
        line = first_line(path)
        if line is None:
            return False
        data = loads_json(line, path, 1)
        return isinstance(data, dict) and "question" in data and "answer" in data

    def load(self, path: Path, options: Mapping[str, Any]) -> list[QARecord]:
        """Every line's record; lines end at ``\\n`` only, so U+2028 inside a string is text, not a break."""
        records = []
        for number, line in jsonl_lines(path):
            data = loads_json(line, path, number)
            if not isinstance(data, dict):
                raise DataError("each line must be a JSON object with 'question' and 'answer'", path, number)
            records.append(record_from_mapping(data, path, number, f"{path.name}:{number}"))
        if not records:
            raise DataError("no Q&A records in this file (it is empty or blank)", path)
        return records
