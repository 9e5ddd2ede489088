"""CSV tables with a header row: a text and a label column (``text,label``, BANKING77's ``text,category``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from csbot.datafiles import csv_rows, find_column, has_suffix
from csbot.errors import DataError
from nlu.schema import Example

from .base import Importer, check_labels

logger = logging.getLogger(__name__)

TEXT_COLUMN = "text"
LABEL_COLUMNS = ("label", "intent", "category")


class CsvImporter(Importer):
    """A header row, then one example a row; options ``text_column`` and ``label_column`` pick columns."""

    name = "csv"

    def sniff(self, path: Path) -> bool:
        """A file named ``*.csv``."""
        return has_suffix(path, ".csv")

    def load(self, path: Path, selector: str | None, options: Mapping[str, Any]) -> list[Example]:
        """Read every row; the header is line 1, a quoted multi-line row is named by its first line."""
        header, rows = csv_rows(path, "text,label")
        text_index = find_column(header, options.get("text_column"), (TEXT_COLUMN,), "text", path)
        label_index = find_column(header, options.get("label_column"), LABEL_COLUMNS, "label", path)
        labelled = []
        for line, row in rows:
            text = row[text_index].strip()
            if not text:
                raise DataError(f"empty text in column {header[text_index]!r}", path, line)
            labelled.append((Example(text, row[label_index].strip()), path, line))
        check_labels(labelled)  # an empty label only where some row has several ('a#b')
        return [example for example, _, _ in labelled]
