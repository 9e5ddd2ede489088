"""The importer interface, format lookup and detection, and :func:`load_examples`.

An importer turns one data file (or folder) in a known format into canonical
:class:`~nlu.schema.Example` objects; every error it raises names the file and, when known, the line.
The formats are the entries of :data:`csbot.plugins.IMPORTERS` (``--format``); detection tries them in
that registry's order. A dotted path to an :class:`Importer` subclass of one's own works as a format name.
"""

from __future__ import annotations

import abc
import functools
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from csbot.datafiles import has_suffix, read_head, read_text  # noqa: F401 (the importers import them from here)
from csbot.errors import DataError, EntitySpanError, UnknownFormatError
from csbot.plugins import IMPORTERS
from nlu.schema import Example

logger = logging.getLogger(__name__)


class Importer(abc.ABC):
    """Reads one data format into canonical examples; built-in ones are listed in :data:`csbot.plugins.IMPORTERS`."""

    #: The format's name, as given to ``--format`` (its key in the registry).
    name: ClassVar[str]
    #: Whether ``PATH@SELECTOR`` means something for this format (e.g. CLINC150 splits, NLU++ folds).
    takes_selector: ClassVar[bool] = False

    @abc.abstractmethod
    def sniff(self, path: Path) -> bool:
        """Cheaply tell whether ``path`` looks like this format (name and a peek at content); never raises."""

    @abc.abstractmethod
    def load(self, path: Path, selector: str | None, options: Mapping[str, Any]) -> list[Example]:
        """Read every example at ``path``; ``selector`` picks a part where the format has parts."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def known_formats() -> list[str]:
    """The names of every built-in format, sorted."""
    return sorted(IMPORTERS.names())


@functools.cache
def _importer(name: str) -> Importer:
    return IMPORTERS.resolve(name)()


def get_importer(name: str) -> Importer:
    """The importer for format ``name`` (a built-in name or a dotted path to an :class:`Importer` subclass).

    An unknown name raises :class:`UnknownFormatError`; a dotted path that does not lead to a complete
    importer raises :class:`~csbot.errors.ConfigError` naming ``--format``.
    """
    if not IMPORTERS.is_known(name) and "." not in name and ":" not in name:
        raise UnknownFormatError(f"unknown data format {name!r}; known formats: {', '.join(known_formats())}")
    return _importer(name)


def detect_format(path: str | Path) -> str:
    """The name of the format ``path`` is in, from its name and a peek at its content.

    The built-in formats are tried in the order of :data:`csbot.plugins.IMPORTERS`.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("no such file or directory", path)
    for name in IMPORTERS.names():
        try:
            if _importer(name).sniff(path):
                logger.debug("detected format %s for %s", name, path)
                return name
        except Exception:  # a sniff must never break detection; treat it as "not mine"
            logger.debug("sniffing %s as %s failed", path, name, exc_info=True)
    kind = "folder" if path.is_dir() else "file"
    raise UnknownFormatError(
        f"cannot tell the data format of this {kind}; known formats: {', '.join(known_formats())} "
        "(name one with --format NAME)",
        path,
    )


def load_examples(
    path: str | Path, format: str | None = None, *, selector: str | None = None, **options: Any
) -> list[Example]:
    """Load the examples at ``path`` in ``format`` (detected when None); options go to the importer.

    ``selector`` picks part of the data (CLINC150 splits, NLU++ folds); formats without parts reject it.
    Options an importer does not use (e.g. ``text_column`` for JSONL) are ignored.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("no such file or directory", path)
    name = format if format is not None else detect_format(path)
    importer = get_importer(name)
    if selector is not None and not importer.takes_selector:
        raise DataError(f"the {name} format takes no '@selector' (got {selector!r})", path)
    examples = importer.load(path, selector, options)
    for index, example in enumerate(examples):
        problem = example.span_problem()
        if problem is not None:  # importers check with line numbers first; this is the last guard
            raise EntitySpanError(f"example {index}: {problem}", path)
    logger.info("loaded %d examples from %s (%s)", len(examples), path, name)
    return examples


# --- helpers shared by the importers (not part of the public API) --------------------------------

def load_json(path: Path) -> tuple[str, Any]:
    """The file's text and its decoded JSON; a syntax error raises DataError with its line."""
    text = read_text(path)
    try:
        return text, json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg} (column {exc.colno})", path, exc.lineno) from exc


def line_of_offset(text: str, offset: int) -> int:
    """The 1-based line holding character ``offset`` of ``text``."""
    return text.count("\n", 0, offset) + 1


_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\r\n"


def _skip_ws(text: str, index: int) -> int:
    while index < len(text) and text[index] in _WHITESPACE:
        index += 1
    return index


def _child_offset(text: str, index: int, step: str | int) -> int | None:
    """Offset of the member ``step`` (a key or a list index) of the JSON value starting at ``index``."""
    opening, closing = ("{", "}") if isinstance(step, str) else ("[", "]")
    if index >= len(text) or text[index] != opening:
        return None
    index = _skip_ws(text, index + 1)
    position = 0
    while index < len(text) and text[index] != closing:
        if isinstance(step, str):
            key, index = _DECODER.raw_decode(text, index)
            index = _skip_ws(text, index)
            if text[index] != ":":
                return None
            index = _skip_ws(text, index + 1)
            if key == step:
                return index
        elif position == step:
            return index
        _, index = _DECODER.raw_decode(text, index)
        index = _skip_ws(text, index)
        if index < len(text) and text[index] == ",":
            index = _skip_ws(text, index + 1)
        position += 1
    return None


def json_line(text: str, steps: Sequence[str | int]) -> int:
    """The 1-based line where the JSON value at ``steps`` (keys and list indexes from the root) starts.

    Best effort: when a step cannot be followed, the line of the deepest value reached is returned.
    """
    index = _skip_ws(text, 0)
    for step in steps:
        try:
            child = _child_offset(text, index, step)
        except (ValueError, IndexError):
            child = None
        if child is None:
            break
        index = child
    return line_of_offset(text, index)


def check_spans(example: Example, path: Path, line: int | None, where: str = "") -> Example:
    """Return ``example`` when its entities select their values, else raise EntitySpanError at ``line``."""
    problem = example.span_problem()
    if problem is not None:
        raise EntitySpanError(f"{where}{problem}", path, line)
    return example


__all__ = [
    "Importer",
    "detect_format",
    "get_importer",
    "known_formats",
    "load_examples",
]
