"""Reading data files with errors that name the file and line: shared by the NLU importers and the Q&A sources."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from csbot.errors import DataError

#: How many bytes :func:`read_head` reads for a content sniff.
HEAD_BYTES = 64 * 1024


def read_text(path: Path) -> str:
    """The file's text as UTF-8 (a leading BOM dropped); unreadable or non-UTF-8 data raises DataError."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read the file: {exc.strerror or exc}", path) from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"not valid UTF-8 (byte {exc.start})", path, line) from exc


def read_head(path: Path, size: int = HEAD_BYTES) -> str:
    """The first ``size`` bytes of a file as text, for sniffing (undecodable bytes replaced)."""
    with path.open("rb") as handle:
        head = handle.read(size)
    return head.decode("utf-8", errors="replace").lstrip("\ufeff")


def has_suffix(path: Path, *suffixes: str) -> bool:
    """Whether ``path`` is a file whose name ends with one of ``suffixes`` (case-insensitive)."""
    return path.is_file() and path.suffix.lower() in suffixes


def find_column(
    header: list[str], chosen: str | None, defaults: tuple[str, ...], role: str, path: Path, required: bool = True
) -> int | None:
    """The index of the ``role`` column: ``chosen`` when given, else the first of ``defaults`` present.

    A missing required column raises DataError on line 1; a missing optional one gives None.
    """
    wanted = (chosen,) if chosen else defaults
    lowered = [cell.lower() for cell in header]
    for name in wanted:
        if name in header:
            return header.index(name)
        if name.lower() in lowered:
            return lowered.index(name.lower())
    if not required and not chosen:
        return None
    looked = repr(chosen) if chosen else " or ".join(repr(n) for n in defaults)
    raise DataError(
        f"no {role} column {looked} in the header ({', '.join(header)})"
        + ("" if chosen else f"; name it with {role}_column"),
        path,
        1,
    )


def csv_rows(path: Path, example_header: str) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The stripped header and an iterator of ``(line, row)`` for a CSV file with a header row.

    Blank lines are skipped; a row with the wrong number of fields or malformed quoting raises DataError
    naming the row's first line.
    """
    reader = csv.reader(io.StringIO(read_text(path), newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise DataError(f"malformed CSV: {exc}", path, reader.line_num) from exc
    if header is None or not any(cell.strip() for cell in header):
        raise DataError(f"no header row (expected e.g. '{example_header}')", path, 1)
    header = [cell.strip() for cell in header]

    def rows() -> Iterator[tuple[int, list[str]]]:
        line = reader.line_num
        try:
            for row in reader:
                first_line, line = line + 1, reader.line_num
                if not row:
                    continue
                if len(row) != len(header):
                    raise DataError(f"{len(row)} fields where the header has {len(header)}", path, first_line)
                yield first_line, row
        except csv.Error as exc:
            raise DataError(f"malformed CSV: {exc}", path, reader.line_num) from exc

    return header, rows()
