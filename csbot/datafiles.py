"""Reading data files strictly, with errors that name the file and line: shared by every reader of user files.

The rules, the same for every importer, Q&A source and configuration reader:

* **Text** is UTF-8, with or without a byte-order mark; anything else is a :class:`DataError` naming the file
  and the line of the first bad byte (:func:`decode_utf8`, :func:`read_text`).
* **JSON Lines** are split on ``\\n`` only (a trailing ``\\r`` dropped), never on the other characters
  ``str.splitlines`` breaks at (U+2028, U+2029, U+0085, form feed ...), which JSON allows raw inside a
  string (:func:`jsonl_lines`).
* **JSON** is strict: see :mod:`csbot.strict_json`.
* **Format detection** reads the first non-blank line whole (:func:`first_line`), however long it is, or a
  head of :data:`HEAD_BYTES` for a content sniff (:func:`read_head`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from csbot.errors import DataError

#: How many bytes :func:`read_head` reads for a content sniff.
HEAD_BYTES = 64 * 1024

_BOM = b"\xef\xbb\xbf"
_JSON_WS = " \t\r\n"


# --- text ----------------------------------------------------------------------------------------


def decode_utf8(raw: bytes, path: str | Path, first_line: int = 1) -> str:
    """``raw`` decoded as UTF-8, a leading byte-order mark dropped; a bad byte raises DataError with its line.

    ``first_line`` is the line number of ``raw``'s first byte (for one line of a larger file).
    """
    if raw.startswith(_BOM):
        raw = raw[len(_BOM):]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + raw.count(b"\n", 0, exc.start)
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataError(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {column}); save the file as UTF-8",
            path,
            line,
        ) from None


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes; a missing or unreadable file raises DataError naming it."""
    path = Path(path)
    try:
        return path.read_bytes()
    except IsADirectoryError:
        raise DataError("is a folder, not a file", path) from None
    except FileNotFoundError:
        raise DataError("no such file", path) from None
    except OSError as exc:
        raise DataError(f"cannot read the file: {exc.strerror or exc}", path) from exc


def read_text(path: str | Path) -> str:
    """The file's text as UTF-8 (a leading BOM dropped); unreadable or non-UTF-8 data raises DataError."""
    return decode_utf8(read_bytes(path), path)


def is_blank(text: str) -> bool:
    """Whether ``text`` holds nothing but JSON whitespace (space, tab, CR, LF)."""
    return not text.strip(_JSON_WS)


def jsonl_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of every non-blank line of a JSON Lines file.

    Lines end at ``\\n`` only; a trailing ``\\r`` is dropped, so CRLF files read the same. Each line is
    decoded on its own, so a bad byte is named by its line.
    """
    raw = read_bytes(path)
    if raw.startswith(_BOM):
        raw = raw[len(_BOM):]
    for number, chunk in enumerate(raw.split(b"\n"), start=1):
        if chunk.endswith(b"\r"):
            chunk = chunk[:-1]
        text = decode_utf8(chunk, path, number)
        if not is_blank(text):
            yield number, text


def read_head(path: Path, size: int = HEAD_BYTES) -> str:
    """The first ``size`` bytes of a file as text, for sniffing (undecodable bytes replaced)."""
    with path.open("rb") as handle:
        head = handle.read(size)
    return head.decode("utf-8", errors="replace").lstrip("\ufeff")


def first_line(path: Path) -> str | None:
    """The first non-blank line of a file, read whole however long it is (for sniffing); None when the file
    has none or it is not UTF-8. Lines end at ``\\n`` only."""
    with path.open("rb") as handle:
        for number, chunk in enumerate(handle, start=1):
            if number == 1 and chunk.startswith(_BOM):
                chunk = chunk[len(_BOM):]
            try:
                text = chunk.decode("utf-8")
            except UnicodeDecodeError:
                return None
            text = text.rstrip("\n").removesuffix("\r")
            if not is_blank(text):
                return text
    return None


def has_suffix(path: Path, *suffixes: str) -> bool:
    """Whether ``path`` is a file whose name ends with one of ``suffixes`` (case-insensitive)."""
    return path.is_file() and path.suffix.lower() in suffixes


# --- CSV -----------------------------------------------------------------------------------------


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


def csv_header(path: Path) -> list[str]:
    """The lower-cased cells of a CSV file's first line, read whole (for sniffing); empty when there is none."""
    line = first_line(path)
    if line is None:
        return []
    try:
        row = next(csv.reader([line]), [])
    except csv.Error:
        return []
    return [cell.strip().lower() for cell in row]


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


__all__ = [
    "HEAD_BYTES",
    "csv_header",
    "csv_rows",
    "decode_utf8",
    "find_column",
    "first_line",
    "has_suffix",
    "is_blank",
    "jsonl_lines",
    "read_bytes",
    "read_head",
    "read_text",
]
