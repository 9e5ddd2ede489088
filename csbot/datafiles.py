"""Reading data files strictly, with errors that name the file and line: shared by every reader of user files.

The rules, the same for every importer, Q&A source and configuration reader:

* **Text** is UTF-8, with or without a byte-order mark; anything else is a :class:`DataError` naming the file
  and the line of the first bad byte (:func:`decode_utf8`, :func:`read_text`).
* **JSON Lines** are split on ``\\n`` only (a trailing ``\\r`` dropped), never on the other characters
  ``str.splitlines`` breaks at (U+2028, U+2029, U+0085, form feed ...), which JSON allows raw inside a
  string (:func:`jsonl_lines`).
* **JSON** is strict (:func:`loads_json`, :func:`read_json`): a key given twice in one object, ``NaN`` or
  ``Infinity``, a lone surrogate (``"\\ud800"``), a number too long to convert and nesting deeper than
  :data:`MAX_DEPTH` are errors naming the file and, when known, the line.
* **Format detection** reads the first non-blank line whole (:func:`first_line`), however long it is, or a
  head of :data:`HEAD_BYTES` for a content sniff (:func:`read_head`).

:func:`value_problem` checks any decoded tree (JSON or YAML) for what cannot be used downstream.
"""

from __future__ import annotations

import csv
import io
import json
import json.decoder
import json.scanner
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from csbot.errors import DataError

#: How many bytes :func:`read_head` reads for a content sniff.
HEAD_BYTES = 64 * 1024
#: The deepest nesting of lists and mappings a data or configuration file may have.
MAX_DEPTH = 100
#: The most values (each list, mapping, key and scalar counts one) a decoded tree may expand to; YAML aliases
#: can make a small file expand to billions (the "billion laughs").
MAX_VALUES = 5_000_000

_BOM = b"\xef\xbb\xbf"
_SURROGATE = re.compile("[\ud800-\udfff]")
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


# --- decoded trees -------------------------------------------------------------------------------


def value_problem(root: Any, max_depth: int = MAX_DEPTH, max_values: int = MAX_VALUES) -> str | None:
    """Why a decoded tree (JSON or YAML) cannot be used, or None: nesting deeper than ``max_depth``, more than
    ``max_values`` values once aliases are expanded, a value that contains itself, a lone surrogate in a string.

    Shared lists and mappings (YAML aliases) are measured once, so the check is linear in the file.
    """
    measured: dict[int, tuple[int, int]] = {}  # id -> (height, expanded size) of a finished list or mapping
    open_ids: set[int] = set()  # the lists and mappings on the current path
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        value, finished = stack.pop()
        if isinstance(value, str):
            if not value.isascii() and _SURROGATE.search(value):
                return f"a lone surrogate ({_SURROGATE.search(value).group()!a}) in the string {value[:40]!a}"
            continue
        if not isinstance(value, (list, dict)):
            continue
        key = id(value)
        children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        if finished:
            height, size = 1, 1
            for child in children:
                if isinstance(child, (list, dict)):
                    child_height, child_size = measured[id(child)]
                    height, size = max(height, child_height + 1), size + child_size
                else:
                    size += 1
            open_ids.discard(key)
            measured[key] = (height, size)
            if height > max_depth:
                return f"nested more than {max_depth} levels deep"
            if size > max_values:
                return f"more than {max_values} values (after expanding aliases)"
            continue
        if key in measured:
            continue
        if key in open_ids:
            return "a value contains itself (an alias of a mapping or list inside it)"
        if len(open_ids) >= max_depth:
            return f"nested more than {max_depth} levels deep"
        open_ids.add(key)
        stack.append((value, True))
        stack.extend((child, False) for child in children)
    return None


# --- JSON ----------------------------------------------------------------------------------------


class _DuplicateKey(ValueError):
    def __init__(self, key: str, offset: int | None = None) -> None:
        super().__init__(key)
        self.key, self.offset = key, offset


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return result


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _skip_ws(text: str, index: int) -> int:
    while index < len(text) and text[index] in _JSON_WS:
        index += 1
    return index


class _LocatingDecoder(json.JSONDecoder):
    """A slow pure-Python decoder that says where the first key given twice is (run only after one was found)."""

    def __init__(self) -> None:
        super().__init__(object_pairs_hook=list)
        self.parse_object = self._parse_object
        self.scan_once = json.scanner.py_make_scanner(self)

    def _parse_object(self, s_and_end, strict, scan_once, object_hook, object_pairs_hook, memo):
        text, start = s_and_end
        pairs, end = json.decoder.JSONObject(s_and_end, strict, scan_once, object_hook, object_pairs_hook, memo)
        keys = [key for key, _ in pairs]
        if len(set(keys)) == len(keys):
            return pairs, end
        seen: set[str] = set()
        index = start
        for key in keys:
            index = _skip_ws(text, index)
            if key in seen:
                raise _DuplicateKey(key, index)
            seen.add(key)
            _, index = json.decoder.scanstring(text, index + 1, strict)
            index = _skip_ws(text, index) + 1  # the ':'
            _, index = _PLAIN.raw_decode(text, _skip_ws(text, index))
            index = _skip_ws(text, index) + 1  # the ',' or the closing brace
        raise _DuplicateKey(keys[-1])


_PLAIN = json.JSONDecoder()


def _duplicate_offset(text: str) -> int | None:
    try:
        _LocatingDecoder().decode(text)
    except _DuplicateKey as exc:
        return exc.offset
    except (ValueError, RecursionError):
        return None
    return None


def line_of_offset(text: str, offset: int) -> int:
    """The 1-based line holding character ``offset`` of ``text``."""
    return text.count("\n", 0, offset) + 1


def loads_json(text: str, path: str | Path, line: int | None = None) -> Any:
    """The strictly decoded JSON of ``text``, from ``path`` (``line``: the text is that one line of the file).

    Invalid JSON, a key given twice in one object, ``NaN``/``Infinity``, a number too long to convert, nesting
    deeper than :data:`MAX_DEPTH` and lone surrogates raise DataError naming the file and, when known, the line.
    """

    def where(offset: int | None) -> int | None:
        if line is not None:
            return line
        return line_of_offset(text, offset) if offset is not None else None

    try:
        data = json.loads(text, object_pairs_hook=_unique_pairs, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        at = line if line is not None else exc.lineno
        raise DataError(f"invalid JSON: {exc.msg} (column {exc.colno})", path, at) from None
    except _DuplicateKey as exc:
        offset = _duplicate_offset(text)
        raise DataError(f"key {exc.key!r} given twice in one object", path, where(offset)) from None
    except RecursionError:
        raise DataError(f"invalid JSON: nested more than {MAX_DEPTH} levels deep", path, line) from None
    except ValueError as exc:  # a number with more digits than Python converts, NaN, Infinity
        reason = str(exc)
        if "digits" in reason:
            reason = "a number has too many digits"
        raise DataError(f"invalid JSON: {reason}", path, line) from None
    problem = value_problem(data)
    if problem is not None:
        raise DataError(f"invalid JSON: {problem}", path, line)
    return data


def read_json(path: str | Path) -> tuple[str, Any]:
    """A JSON file's text and its strictly decoded value (see :func:`loads_json`); an empty file is an error."""
    text = read_text(path)
    if is_blank(text):
        raise DataError("the file is empty", path)
    return text, loads_json(text, path)


def _child_offset(text: str, index: int, step: str | int) -> int | None:
    """Offset of the member ``step`` (a key or a list index) of the JSON value starting at ``index``."""
    opening, closing = ("{", "}") if isinstance(step, str) else ("[", "]")
    if index >= len(text) or text[index] != opening:
        return None
    index = _skip_ws(text, index + 1)
    position = 0
    while index < len(text) and text[index] != closing:
        if isinstance(step, str):
            key, index = _PLAIN.raw_decode(text, index)
            index = _skip_ws(text, index)
            if text[index] != ":":
                return None
            index = _skip_ws(text, index + 1)
            if key == step:
                return index
        elif position == step:
            return index
        _, index = _PLAIN.raw_decode(text, index)
        index = _skip_ws(text, index)
        if index < len(text) and text[index] == ",":
            index = _skip_ws(text, index + 1)
        position += 1
    return None


def _follow(text: str, steps: Sequence[str | int]) -> int:
    index = _skip_ws(text, 0)
    for step in steps:
        try:
            child = _child_offset(text, index, step)
        except (ValueError, IndexError, RecursionError):
            child = None
        if child is None:
            break
        index = child
    return index


def json_line(text: str, steps: Sequence[str | int]) -> int:
    """The 1-based line where the JSON value at ``steps`` (keys and list indexes from the root) starts.

    Best effort: when a step cannot be followed, the line of the deepest value reached is returned.
    """
    return line_of_offset(text, _follow(text, steps))


def json_item_lines(text: str, steps: Sequence[str | int]) -> list[int]:
    """The 1-based line of each item of the JSON list at ``steps``, in one pass (empty when it is no list)."""
    index = _follow(text, steps)
    lines: list[int] = []
    if index >= len(text) or text[index] != "[":
        return lines
    index = _skip_ws(text, index + 1)
    try:
        while index < len(text) and text[index] != "]":
            lines.append(line_of_offset(text, index))
            _, index = _PLAIN.raw_decode(text, index)
            index = _skip_ws(text, index)
            if index < len(text) and text[index] == ",":
                index = _skip_ws(text, index + 1)
    except (ValueError, RecursionError):
        pass
    return lines


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
    "MAX_DEPTH",
    "MAX_VALUES",
    "csv_header",
    "csv_rows",
    "decode_utf8",
    "find_column",
    "first_line",
    "has_suffix",
    "is_blank",
    "json_item_lines",
    "json_line",
    "jsonl_lines",
    "line_of_offset",
    "loads_json",
    "read_bytes",
    "read_head",
    "read_json",
    "read_text",
    "value_problem",
]
