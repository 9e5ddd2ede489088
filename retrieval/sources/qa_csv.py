"""Q&A as CSV: a header with ``question,answer`` and optionally ``intent``, ``tags``, ``id``, ``source``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from csbot.datafiles import csv_header, csv_rows, find_column, has_suffix
from csbot.errors import DataError
from retrieval.records import QARecord

from .base import QASource, record_from_mapping

OPTIONAL = ("intent", "tags", "id", "source")


class CsvQASource(QASource):
    """A ``*.csv`` file whose header names a question and an answer column (other names by options)."""

    name = "qa_csv"

    def sniff(self, path: Path) -> bool:
        if not has_suffix(path, ".csv"):
            return False
        header = csv_header(path)
        return "question" in header and "answer" in header

    def load(self, path: Path, options: Mapping[str, Any]) -> list[QARecord]:
        header, rows = csv_rows(path, "question,answer")
        columns = {
            "question": find_column(header, options.get("question_column"), ("question",), "question", path),
            "answer": find_column(header, options.get("answer_column"), ("answer",), "answer", path),
        }
        for name in OPTIONAL:
            index = find_column(header, options.get(f"{name}_column"), (name,), name, path, required=False)
            if index is not None:
                columns[name] = index
        records = [
            record_from_mapping({k: row[i] for k, i in columns.items()}, path, line, f"{path.name}:{line}")
            for line, row in rows
        ]
        if not records:
            raise DataError("no Q&A records in this file (a header and no rows)", path)
        return records
