"""The importer interface, format lookup and detection, and :func:`load_examples`.

An importer turns one data file (or folder) in a known format into canonical
:class:`~nlu.schema.Example` objects; every error it raises names the file and, when known, the line.
The formats are the entries of :data:`csbot.plugins.IMPORTERS` (``--format``); detection tries them in
that registry's order. A dotted path to an :class:`Importer` subclass of one's own works as a format name.

Files are read strictly (:mod:`csbot.datafiles`, :func:`csbot.config.parse_yaml`): UTF-8 with or without a
byte-order mark, JSON Lines split on ``\n`` only, no key given twice in JSON or YAML, no endless numbers or
nesting. Data without examples is an error, and so is an example without an intent in single-label data
(:func:`check_labels`).
"""

from __future__ import annotations

import abc
import functools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from csbot.errors import DataError, EntitySpanError, UnknownFormatError
from csbot.plugins import IMPORTERS
from csbot.strict_json import read_json
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
    Options an importer does not use (e.g. ``text_column`` for JSONL) are ignored. Data without a single
    example (an empty file, only blank lines or comments, ``nlu: []``) is a DataError naming the path.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("no such file or directory", path)
    name = format if format is not None else detect_format(path)
    importer = get_importer(name)
    if selector is not None and not importer.takes_selector:
        raise DataError(f"the {name} format takes no '@selector' (got {selector!r})", path)
    examples = importer.load(path, selector, options)
    if not examples:
        kind = "folder" if path.is_dir() else "file"
        part = f" (selected: {selector})" if selector is not None else ""
        raise DataError(f"no examples in this {kind}{part}; empty data is refused, not read as nothing", path)
    for index, example in enumerate(examples):
        problem = example.span_problem()
        if problem is not None:  # importers check with line numbers first; this is the last guard
            raise EntitySpanError(f"example {index}: {problem}", path)
    logger.info("loaded %d examples from %s (%s)", len(examples), path, name)
    return examples


# --- helpers shared by the importers (not part of the public API) --------------------------------

def load_json(path: Path) -> tuple[str, Any]:
    """The file's text and its strictly decoded JSON (:func:`csbot.datafiles.read_json`: no key given twice,
    no endless nesting or endless numbers); every problem raises DataError with its line when known."""
    return read_json(path)


#: What an empty label is refused with (see :func:`check_labels`).
EMPTY_LABEL = (
    "no intent; an example without an intent is allowed only in multi-label data (where some example has "
    "several intents, 'a#b' or an 'intents' list), so give every example its intent"
)


def check_labels(labelled: Sequence[tuple[Example, Path, int | None]], multi_label: bool = False) -> None:
    """Refuse an example without an intent in single-label data, naming its file and line.

    The rule (the one place a data file decides the label mode): data is multi-label when one of its examples
    has several intents (``a#b``), or when its format says so (NLU++; a JSONL example given as an
    ``intents`` list, ``multi_label=True``). Only there may an example carry no intent, meaning "none of the
    labels applies" (the model then scores each label on its own and may predict none). In any other data
    an empty or missing intent is a mistake, and one such line must not switch the whole model to
    multi-label mode: it is a :class:`DataError` at that line.
    """
    if multi_label or any(len(example.intents) > 1 for example, _, _ in labelled):
        return
    for example, path, line in labelled:
        if not example.intents:
            raise DataError(EMPTY_LABEL, path, line)


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
