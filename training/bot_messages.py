"""The messages of a whole-bot evaluation: labelled in-scope data and plain out-of-scope messages."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from csbot.errors import DataError
from nlu.labels import OOS_LABELS


@dataclass(frozen=True)
class LabelledMessage:
    """A customer message and its gold intent; ``intent`` None for an out-of-scope message."""

    text: str
    intent: str | None


def _read_lines(path: Path) -> list[LabelledMessage]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path) from exc
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror or exc}", path) from exc
    return [LabelledMessage(line.strip(), None) for line in lines if line.strip()]


def load_messages(data: Sequence[str], out_of_scope: Sequence[str] = (), limit: int | None = None,
                  data_format: str | None = None) -> list[LabelledMessage]:
    """Labelled in-scope data (any format :func:`training.data.load_dataset` reads; an example labelled with an
    out-of-scope label such as ``oos`` counts as out of scope) and plain out-of-scope messages (any such format,
    intents ignored, or a ``.txt`` file with one message a line). ``limit`` keeps the first N of each."""
    from training.data import DataSpec, load_dataset

    if not data:
        raise DataError("no labelled data given (--data)")
    labelled: list[LabelledMessage] = []
    for spec in data:
        for ex in load_dataset([spec], data_format):
            if not ex.intent:
                raise DataError(f"a message has no intent to check the answer against: {ex.text[:60]!r}",
                                DataSpec.parse(spec).path)
            labelled.append(LabelledMessage(ex.text, None if ex.intent.lower() in OOS_LABELS else ex.intent))
    extra: list[LabelledMessage] = []
    for spec in out_of_scope:
        path = Path(spec)
        if path.suffix.lower() == ".txt":
            found = _read_lines(path)
        else:
            found = [LabelledMessage(ex.text, None) for ex in load_dataset([spec])]
        if not found:
            raise DataError("no messages in this out-of-scope file", path)
        extra.extend(found)
    if limit is not None:
        labelled, extra = _sample(labelled, limit), _sample(extra, limit)
    return labelled + extra


def _sample(items: list[LabelledMessage], limit: int) -> list[LabelledMessage]:
    """At most ``limit`` of ``items``, drawn with a fixed seed (a file sorted by intent keeps its spread), in order."""
    if limit < 1:
        raise DataError(f"--limit must be at least 1, got {limit}")
    if len(items) <= limit:
        return items
    keep = sorted(random.Random(13).sample(range(len(items)), limit))
    return [items[i] for i in keep]


__all__ = ["LabelledMessage", "load_messages"]
