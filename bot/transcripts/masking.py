"""Masking personal data in the transcript log: ``transcripts.mask: [email, phone]``.

:class:`MaskingSink` sits in front of the sinks (:func:`bot.transcripts.factory.create_sink` puts it there when the
section names something to mask) and writes a masked copy of each turn: the customer's text, the parse's entity
values (their offsets moved to the masked text, so reviewed turns still train), the reply's texts, the decision
note, the retrieval hits and a reviewer's correction. The turn the dialogue manager built, and so the reply the
customer got, is left as it was. A masked value reads ``[email]`` or ``[phone]``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

from bot.transcripts.base import TranscriptSink
from csbot.transcripts import TranscriptTurn

#: What ``transcripts.mask`` may name, and what finds it. Both patterns start only where a run starts, so they
#: stay linear on hostile input.
PATTERNS: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    # 7 to 15 digits, maybe after +, with spaces, dots, dashes or brackets between groups: "+49 30 1234567",
    # "(555) 123-4567"; a 5-digit order number, a date like 12/05/2024 or 2024-05-12 is not taken for one
    "phone": re.compile(r"(?<![\w+])(?!\d{4}-\d\d-\d\d(?!\d))(?:\+|00)?\(?\d(?:[\s().-]{0,2}\d){6,14}(?!\w)"),
}


class Masker:
    """Replaces what :data:`PATTERNS` finds for ``kinds`` with ``[kind]``."""

    def __init__(self, kinds: Iterable[str]) -> None:
        self.kinds = list(kinds)
        unknown = [k for k in self.kinds if k not in PATTERNS]
        if unknown:
            raise ValueError(f"cannot mask {unknown[0]!r}; known: {', '.join(PATTERNS)}")

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """The ``(start, end, kind)`` of every value to mask, in order, overlaps dropped (the first kind wins)."""
        found = sorted((m.start(), m.end(), kind) for kind in self.kinds for m in PATTERNS[kind].finditer(text))
        kept: list[tuple[int, int, str]] = []
        for span in found:
            if not kept or span[0] >= kept[-1][1]:
                kept.append(span)
        return kept

    def text(self, text: str) -> str:
        return self.text_and_offsets(text)[0]

    def text_and_offsets(self, text: str) -> tuple[str, Any]:
        """The masked text and a function moving an offset of ``text`` to the masked text (an offset inside a
        masked value moves to the start or the end of its mask)."""
        spans = self.spans(text)
        parts, position, moved = [], 0, []
        for start, end, kind in spans:
            parts.append(text[position:start])
            new_start = sum(len(p) for p in parts)
            mask = f"[{kind}]"
            parts.append(mask)
            moved.append((start, end, new_start, new_start + len(mask)))
            position = end
        parts.append(text[position:])

        def move(offset: int, is_end: bool = False) -> int:
            shift = 0
            for start, end, new_start, new_end in moved:
                if offset >= end:
                    shift = new_end - end
                elif offset > start or (offset == start and is_end):
                    return new_end if is_end else new_start
                else:
                    break
            return offset + shift

        return "".join(parts), move

    def value(self, value: Any) -> Any:
        """Every string inside ``value`` (dicts and lists walked) masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        return value

    def turn(self, turn: TranscriptTurn) -> TranscriptTurn:
        """A masked copy of ``turn`` (see the module docstring); ``turn`` itself is not changed."""
        masked = copy.copy(turn)
        masked.user_text, move = self.text_and_offsets(turn.user_text)
        masked.decision = self.text(turn.decision)
        masked.reply = self.value(turn.reply)
        masked.hits = self.value(turn.hits)
        masked.correction = self.value(turn.correction)
        if turn.parse is not None:
            parse = dict(turn.parse)
            entities = []
            for entity in parse.get("entities") or []:
                entity = dict(entity)
                if isinstance(entity.get("start"), int) and isinstance(entity.get("end"), int):
                    entity["start"], entity["end"] = move(entity["start"]), move(entity["end"], is_end=True)
                    entity["value"] = masked.user_text[entity["start"]:entity["end"]]
                else:
                    entity["value"] = self.value(entity.get("value"))
                entities.append(entity)
            parse["entities"] = entities
            if isinstance(parse.get("text"), str):
                parse["text"] = masked.user_text
            masked.parse = parse
        return masked


class MaskingSink(TranscriptSink):
    """Hands a masked copy of each turn to ``inner``; the rest of its life is ``inner``'s."""

    def __init__(self, inner: TranscriptSink, kinds: Iterable[str]) -> None:
        self.inner = inner
        self.masker = Masker(kinds)

    async def start(self) -> None:
        await self.inner.start()

    async def ping(self) -> None:
        await self.inner.ping()

    async def append(self, turn: TranscriptTurn) -> None:
        await self.inner.append(self.masker.turn(turn))

    async def close(self) -> None:
        await self.inner.close()

    def __repr__(self) -> str:
        return f"MaskingSink({self.inner!r}, {self.masker.kinds})"


__all__ = ["PATTERNS", "Masker", "MaskingSink"]
