"""Q&A as JSON Lines: one ``{"question", "answer", "intent"?, "tags"?, "id"?, "source"?}`` object a line."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from csbot.datafiles import has_suffix, read_head, read_text
from csbot.errors import DataError
from retrieval.records import QARecord

from .base import QASource, record_from_mapping


class JsonlQASource(QASource):
    """A ``*.jsonl`` file whose first object has ``question`` and ``answer``."""

    name = "qa_jsonl"

    def sniff(self, path: Path) -> bool:
        if not has_suffix(path, ".jsonl", ".ndjson"):
            return False
        first = next((line for line in read_head(path).splitlines() if line.strip()), "")
        data = json.loads(first)
        return isinstance(data, dict) and "question" in data and "answer" in data

    def load(self, path: Path, options: Mapping[str, Any]) -> list[QARecord]:
        records = []
        for number, line in enumerate(read_text(path).splitlines(), start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON: {exc.msg} (column {exc.colno})", path, number) from exc
            if not isinstance(data, dict):
                raise DataError("each line must be a JSON object with 'question' and 'answer'", path, number)
            records.append(record_from_mapping(data, path, number, f"{path.name}:{number}"))
        return records
