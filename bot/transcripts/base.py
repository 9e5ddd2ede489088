"""Where transcript turns go: the :class:`TranscriptSink` interface and :class:`TeeSink`, which fans out to several.

The dialogue manager appends one :class:`~bot.transcripts.record.TranscriptTurn` per turn to a single sink;
a deployment that keeps both the JSONL file and a Redis stream hands it a ``TeeSink`` of the two.
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
from collections.abc import Iterable
from typing import Any, Self

from bot.transcripts.record import TranscriptTurn

log = logging.getLogger(__name__)


class TranscriptSink(abc.ABC):
    """An append-only destination for transcript turns; usable as ``async with sink: ...``."""

    @abc.abstractmethod
    async def append(self, turn: TranscriptTurn) -> None:
        """Record one turn durably enough that a crash of this process does not lose it."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release files and connections; the sink is not used afterwards."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class TeeSink(TranscriptSink):
    """Appends every turn to each of several sinks at once.

    A failing sink never stops the others, and never fails the turn: the customer still gets the reply
    and the other sinks still get the record. Errors are logged, not raised, and logged *once*: the
    first failure of a sink is a warning with its cause (the traceback); further consecutive failures of
    the same sink are logged at debug level only, so a Redis outage writes one warning instead of one
    per turn. When the sink succeeds again, an info line says so and the next failure warns again.
    :attr:`failing` lists the sinks whose last append failed (for health checks).
    """

    def __init__(self, sinks: Iterable[TranscriptSink]) -> None:
        self.sinks: list[TranscriptSink] = list(sinks)
        self._failures: dict[int, int] = {}  # index in self.sinks -> consecutive failed appends

    @property
    def failing(self) -> list[TranscriptSink]:
        """The sinks whose most recent append failed."""
        return [self.sinks[i] for i in sorted(self._failures)]

    async def append(self, turn: TranscriptTurn) -> None:
        """Append to all sinks concurrently; never raises a sink's error (see the class docstring)."""
        results = await asyncio.gather(*(sink.append(turn) for sink in self.sinks), return_exceptions=True)
        for index, result in enumerate(results):
            sink = self.sinks[index]
            if isinstance(result, Exception):
                failures = self._failures.get(index, 0) + 1
                self._failures[index] = failures
                if failures == 1:
                    log.warning("transcript sink %r failed; other sinks keep recording (logged once until it "
                                "recovers): %s", sink, result, exc_info=result)
                else:
                    log.debug("transcript sink %r still failing (%d turns): %s", sink, failures, result)
            elif isinstance(result, BaseException):  # KeyboardInterrupt, SystemExit: not ours to swallow
                raise result
            elif index in self._failures:
                log.info("transcript sink %r recovered after %d failed turns", sink, self._failures.pop(index))

    async def close(self) -> None:
        """Close every sink; an error closing one is logged and the others are still closed."""
        results = await asyncio.gather(*(sink.close() for sink in self.sinks), return_exceptions=True)
        for sink, result in zip(self.sinks, results):
            if isinstance(result, Exception):
                log.warning("closing transcript sink %r failed: %s", sink, result, exc_info=result)

    def __repr__(self) -> str:
        return f"TeeSink({self.sinks!r})"


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays as plain numbers and lists; anything else unknown as its ``str``."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def turn_to_json(turn: TranscriptTurn) -> str:
    """One turn as one line of compact JSON (no newline inside: JSON escapes them in strings)."""
    return json.dumps(turn.to_dict(copy=False), ensure_ascii=False, separators=(",", ":"), default=_json_default)


def turn_from_json(text: str | bytes) -> TranscriptTurn:
    """The inverse of :func:`turn_to_json`; raises ``ValueError`` with the reason when it is not a turn."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")  # noqa: TRY004 - bad data, one error type
    try:
        return TranscriptTurn.from_dict(data)
    except TypeError as exc:
        raise ValueError(f"not a transcript turn: {exc}") from exc
