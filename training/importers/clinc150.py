"""CLINC150 JSON: an object of splits, each a list of ``[text, intent]`` pairs; out-of-scope is ``oos``."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from csbot.datafiles import has_suffix, read_head
from csbot.errors import DataError
from csbot.strict_json import json_line
from nlu.schema import Example

from .base import Importer, load_json

logger = logging.getLogger(__name__)

#: The splits read when no ``@selector`` is given.
DEFAULT_SPLITS = ("train", "oos_train")

_STRING = r'"(?:[^"\\]|\\.)*"'
_SHAPE = re.compile(rf"\A\s*\{{\s*{_STRING}\s*:\s*\[\s*\[\s*{_STRING}\s*,\s*{_STRING}\s*\]")


class Clinc150Importer(Importer):
    """CLINC150; the selector is a comma list of split names (default ``train,oos_train``)."""

    name = "clinc150"
    takes_selector = True

    def sniff(self, path: Path) -> bool:
        """A ``*.json`` object whose first value starts as a list of ``[text, intent]`` string pairs."""
        return has_suffix(path, ".json") and bool(_SHAPE.match(read_head(path)))

    def load(self, path: Path, selector: str | None, options: Mapping[str, Any]) -> list[Example]:
        """Read the selected splits in the order named; errors name the split, the pair's index and line."""
        text, data = load_json(path)
        if not isinstance(data, dict):
            raise DataError("expected an object of splits (train, val, oos_train, ...)", path, 1)
        splits = parse_splits(selector, data, path)
        examples = []
        for split in splits:
            pairs = data[split]
            if not isinstance(pairs, list):
                raise DataError(f"split {split!r} is not a list of pairs", path, json_line(text, [split]))
            for index, pair in enumerate(pairs):
                if not (
                    isinstance(pair, list)
                    and len(pair) == 2
                    and all(isinstance(v, str) for v in pair)
                    and pair[0].strip()
                    and pair[1].strip()
                ):
                    raise DataError(
                        f"split {split!r} item {index}: expected a [text, intent] pair of non-empty strings, "
                        f"got {pair!r:.80}",
                        path,
                        json_line(text, [split, index]),
                    )
                examples.append(Example(pair[0].strip(), pair[1].strip()))
        return examples


def parse_splits(selector: str | None, data: Mapping[str, Any], path: Path) -> list[str]:
    """The split names a selector picks, checked against the file's splits."""
    names = list(DEFAULT_SPLITS) if selector is None else [s.strip() for s in selector.split(",")]
    available = ", ".join(data)
    if any(not name for name in names):
        raise DataError(f"empty split name in selector {selector!r}; available splits: {available}", path)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(f"split {', '.join(repeated)} named twice in selector {selector!r}", path)
    unknown = [name for name in names if name not in data]
    if unknown:
        raise DataError(f"unknown split {', '.join(map(repr, unknown))}; available splits: {available}", path)
    return names
