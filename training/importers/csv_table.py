"""CSV tables with a header row: a text and a label column (``text,label``, BANKING77's ``text,category``)."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from csbot.errors import DataError
from nlu.schema import Example

from .base import Importer, has_suffix, read_text, register_importer

logger = logging.getLogger(__name__)

TEXT_COLUMN = "text"
LABEL_COLUMNS = ("label", "intent", "category")


@register_importer
class CsvImporter(Importer):
    """A header row, then one example a row; options ``text_column`` and ``label_column`` pick columns."""

    name = "csv"

    def sniff(self, path: Path) -> bool:
        """A file named ``*.csv``."""
        return has_suffix(path, ".csv")

    def load(self, path: Path, selector: str | None, options: Mapping[str, Any]) -> list[Example]:
        """Read every row; the header is line 1, a quoted multi-line row is named by its first line."""
        reader = csv.reader(io.StringIO(read_text(path), newline=""), strict=True)
        try:
            header = next(reader, None)
            if header is None or not any(cell.strip() for cell in header):
                raise DataError("no header row (expected e.g. 'text,label')", path, 1)
            header = [cell.strip() for cell in header]
            text_index = _column(header, options.get("text_column"), (TEXT_COLUMN,), "text", path)
            label_index = _column(header, options.get("label_column"), LABEL_COLUMNS, "label", path)
            examples = []
            line = reader.line_num
            for row in reader:
                first_line, line = line + 1, reader.line_num
                if not row:  # blank line
                    continue
                if len(row) != len(header):
                    raise DataError(f"{len(row)} fields where the header has {len(header)}", path, first_line)
                text = row[text_index].strip()
                if not text:
                    raise DataError(f"empty text in column {header[text_index]!r}", path, first_line)
                examples.append(Example(text, row[label_index].strip()))
        except csv.Error as exc:
            raise DataError(f"malformed CSV: {exc}", path, reader.line_num) from exc
        return examples


def _column(header: list[str], chosen: str | None, defaults: tuple[str, ...], role: str, path: Path) -> int:
    """The index of the ``role`` column: ``chosen`` when given, else the first of ``defaults`` present."""
    wanted = (chosen,) if chosen else defaults
    lowered = [cell.lower() for cell in header]
    for name in wanted:
        if name in header:
            return header.index(name)
        if name.lower() in lowered:
            return lowered.index(name.lower())
    looked = repr(chosen) if chosen else " or ".join(repr(n) for n in defaults)
    raise DataError(
        f"no {role} column {looked} in the header ({', '.join(header)})"
        + ("" if chosen else f"; name it with {role}_column"),
        path,
        1,
    )
