"""Where transcript turns go: the :class:`TranscriptSink` interface and :class:`TeeSink`, which fans out to several.

The dialogue manager appends one :class:`~csbot.transcripts.TranscriptTurn` per turn to a single sink;
a deployment that keeps both the JSONL file and a Redis stream hands it a ``TeeSink`` of the two
(:func:`bot.transcripts.factory.create_sink` builds it from the ``transcripts`` config). A sink's life:
``start`` (open files, connect), ``ping`` at start-up (does the destination answer?), ``append`` per
turn, ``close``.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Self

from csbot.transcripts import TranscriptTurn

if TYPE_CHECKING:
    from bot.transcripts.config import TranscriptsConfig

log = logging.getLogger(__name__)


class TranscriptSink(abc.ABC):
    """An append-only destination for transcript turns; usable as ``async with sink: ...`` (start, then close).

    Backends implement :meth:`append` and :meth:`close`; :meth:`start`, :meth:`ping` and
    :meth:`from_config` have defaults.
    """

    @classmethod
    def from_config(cls, config: TranscriptsConfig, log_path: Path, redis_url: str | None) -> Self | None:
        """The sink as the ``transcripts`` config section sets it up (what ``create_sink`` calls for each of
        ``transcripts.sinks``), or ``None`` when it has nothing to do in this deployment (the Redis stream
        without a Redis session store); ``log_path`` is the resolved ``transcripts.path``, ``redis_url`` the
        session store's URL when it is Redis. The default takes no settings: ``cls()``."""
        return cls()

    async def start(self) -> None:
        """Open files, connect (before the first turn); an error here is raised, not logged."""

    async def ping(self) -> None:
        """Check that the destination answers (at start-up); raise a :class:`~csbot.errors.StoreError`
        (:class:`~csbot.errors.StoreUnavailableError` for a server that does not answer) when not."""

    @abc.abstractmethod
    async def append(self, turn: TranscriptTurn) -> None:
        """Record one turn durably enough that a crash of this process does not lose it."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release files and connections; the sink is not used afterwards."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class TeeSink(TranscriptSink):
    """Appends every turn to each of several sinks at once.

    A failing sink never stops the others, and never fails the turn: the customer still gets the reply
    and the other sinks still get the record. Errors are logged, not raised, and logged *once*: the
    first failure of a sink is a one-line warning with its cause (the traceback only at debug level, as
    the terminal shows warnings between the bot's lines); further consecutive failures of the same sink
    are logged at debug level only, so a Redis outage or a full disk writes one warning instead of one
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

    async def start(self) -> None:
        """Start every sink, in order; the first error is raised (start-up must fail clearly)."""
        for sink in self.sinks:
            await sink.start()

    async def ping(self) -> None:
        """Ping every sink, in order; the first error is raised."""
        for sink in self.sinks:
            await sink.ping()

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
                                "recovers): %s", sink, one_line(result))
                    log.debug("transcript sink %r failed", sink, exc_info=result)
                else:
                    log.debug("transcript sink %r still failing (%d turns): %s", sink, failures, one_line(result))
            elif isinstance(result, BaseException):  # KeyboardInterrupt, SystemExit: not ours to swallow
                raise result
            elif index in self._failures:
                log.info("transcript sink %r recovered after %d failed turns", sink, self._failures.pop(index))

    async def close(self) -> None:
        """Close every sink; an error closing one is logged and the others are still closed."""
        results = await asyncio.gather(*(sink.close() for sink in self.sinks), return_exceptions=True)
        for sink, result in zip(self.sinks, results):
            if isinstance(result, Exception):
                log.warning("closing transcript sink %r failed: %s", sink, one_line(result))
                log.debug("closing transcript sink %r failed", sink, exc_info=result)

    def __repr__(self) -> str:
        return f"TeeSink({self.sinks!r})"


def one_line(exc: BaseException) -> str:
    """An error as one line for a log: its message (its class name when the message is empty), line breaks
    folded into spaces."""
    return " ".join(str(exc).split()) or exc.__class__.__name__


__all__ = ["TeeSink", "TranscriptSink"]
