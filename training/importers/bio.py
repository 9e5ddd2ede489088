"""BIO triples: a folder with ``seq.in`` (tokens), ``seq.out`` (a BIO tag per token), ``label`` (intent)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from csbot.datafiles import read_text
from csbot.errors import DataError
from nlu.schema import EntitySpan, Example

from .base import Importer, check_labels, check_spans

logger = logging.getLogger(__name__)

FILES = ("seq.in", "seq.out", "label")


class BioImporter(Importer):
    """SNIPS/ATIS-style folders; text is the tokens joined by single spaces, entities come from B-/I- runs."""

    name = "bio"

    def sniff(self, path: Path) -> bool:
        """A folder holding ``seq.in``, ``seq.out`` and ``label``."""
        return path.is_dir() and all((path / name).is_file() for name in FILES)

    def load(self, path: Path, selector: str | None, options: Mapping[str, Any]) -> list[Example]:
        """Read the three files line by line; errors name the file and line at fault."""
        if not path.is_dir():
            raise DataError(f"the bio format reads a folder holding {', '.join(FILES)}", path)
        missing = [name for name in FILES if not (path / name).is_file()]
        if missing:
            raise DataError(f"missing {', '.join(missing)} (a bio folder needs {', '.join(FILES)})", path)
        columns = {name: _lines(path / name) for name in FILES}
        counts = {name: len(lines) for name, lines in columns.items()}
        if len(set(counts.values())) != 1:
            detail = ", ".join(f"{name} has {count}" for name, count in counts.items())
            shortest = min(counts, key=counts.__getitem__)
            raise DataError(
                f"the three files differ in line count ({detail}); {shortest} ends first",
                path / shortest,
                counts[shortest] + 1,
            )
        labelled = []
        rows = zip(columns["seq.in"], columns["seq.out"], columns["label"], strict=True)
        for number, (tokens_line, tags_line, label) in enumerate(rows, start=1):
            tokens, tags = tokens_line.split(), tags_line.split()
            if not tokens:
                raise DataError("empty utterance", path / "seq.in", number)
            if len(tokens) != len(tags):
                raise DataError(
                    f"{len(tags)} tags for {len(tokens)} tokens in seq.in", path / "seq.out", number
                )
            text, entities = tags_to_entities(tokens, tags, path / "seq.out", number)
            example = Example(text, label.strip(), entities)
            labelled.append((check_spans(example, path / "seq.out", number), path / "label", number))
        check_labels(labelled)  # an empty label only where some line has several ('a#b')
        return [example for example, _, _ in labelled]


def _lines(path: Path) -> list[str]:
    """The file's lines, split on ``\\n`` only (a trailing ``\\r`` dropped): U+2028 or a form feed inside a
    line must not shift the three files against each other."""
    lines = [line.removesuffix("\r") for line in read_text(path).split("\n")]
    while lines and not lines[-1].strip():  # trailing blank lines at the end of the file
        lines.pop()
    return lines


def tags_to_entities(
    tokens: list[str], tags: list[str], path: Path, line: int
) -> tuple[str, list[EntitySpan]]:
    """Join ``tokens`` with single spaces and turn the BIO ``tags`` into character-offset entities.

    Lenient like conlleval: an ``I-x`` after ``O`` or after another type starts a new entity.
    """
    text = " ".join(tokens)
    runs: list[list[Any]] = []  # [entity type, start, end]
    open_run = False
    offset = 0
    for position, (token, tag) in enumerate(zip(tokens, tags, strict=True), start=1):
        start, end = offset, offset + len(token)
        offset = end + 1
        if tag == "O":
            open_run = False
            continue
        prefix, _, kind = tag.partition("-")
        if prefix not in ("B", "I") or not kind:
            raise DataError(
                f"tag {tag!r} (token {position}) is not 'O', 'B-<type>' or 'I-<type>'", path, line
            )
        if prefix == "I" and open_run and runs[-1][0] == kind:
            runs[-1][2] = end
        else:
            runs.append([kind, start, end])
            open_run = True
    return text, [EntitySpan(start, end, kind, text[start:end]) for kind, start, end in runs]
