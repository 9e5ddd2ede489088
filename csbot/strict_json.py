"""Strict JSON, and the checks every decoded tree (JSON or YAML) passes, with errors naming file and line.

:func:`loads_json` and :func:`read_json` refuse a key given twice in one object, ``NaN`` and ``Infinity``, a
lone surrogate (``"\\ud800"``), a number too long to convert and nesting deeper than :data:`MAX_DEPTH`;
:func:`json_line` and :func:`json_item_lines` find the line of an item, so an importer's error can name it.
:func:`value_problem` checks any decoded tree, YAML's included, for what cannot be used downstream.
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from csbot.datafiles import is_blank, read_text
from csbot.errors import DataError

#: The deepest nesting of lists and mappings a data or configuration file may have.
MAX_DEPTH = 100
#: The most values (each list, mapping, key and scalar counts one) a decoded tree may expand to; YAML aliases
#: can make a small file expand to billions (the "billion laughs").
MAX_VALUES = 5_000_000

_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON_WS = " \t\r\n"


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


__all__ = [
    "MAX_DEPTH",
    "MAX_VALUES",
    "json_item_lines",
    "json_line",
    "line_of_offset",
    "loads_json",
    "read_json",
    "value_problem",
]
