"""Transcript appends off the reply path: a queue in front of a sink, drained in order by one task.

A turn's reply then waits for neither the file write (a thread hop) nor the Redis stream's round trip. The
cost: turns still queued when the process is killed hard are not recorded (a clean stop drains the queue
first); ``transcripts.background: false`` appends inline instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.transcripts.base import TranscriptSink, one_line
from csbot.errors import StoreError
from csbot.transcripts import TranscriptTurn

log = logging.getLogger(__name__)

#: Turns that may wait in the queue; a turn beyond that waits for room (back-pressure, nothing dropped).
DEFAULT_MAX_QUEUED = 10_000


class BackgroundSink(TranscriptSink):
    """Queues each turn and returns; one task appends them to ``inner`` in the order they came.

    An error of ``inner`` is logged (once until it recovers) and the turn is skipped, as a reply never
    waits for or fails on its transcript. :meth:`flush` waits until every queued turn is written.
    """

    def __init__(self, inner: TranscriptSink, max_queued: int = DEFAULT_MAX_QUEUED) -> None:
        if max_queued < 1:
            raise ValueError(f"max_queued must be at least 1, got {max_queued}")
        self.inner = inner
        self.max_queued = max_queued
        self._queue: asyncio.Queue[TranscriptTurn] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._failing = False
        self._closed = False

    @property
    def queued(self) -> int:
        """Turns waiting to be written."""
        return self._queue.qsize() if self._queue is not None else 0

    async def start(self) -> None:
        """Start the sink behind the queue, then the writer task (on the running loop, which serves the turns)."""
        if self._closed:
            raise StoreError(f"the transcript sink {self.inner!r} is closed")
        await self.inner.start()
        self._start_writer()

    async def ping(self) -> None:
        """Ping the sink behind the queue."""
        await self.inner.ping()

    async def append(self, turn: TranscriptTurn) -> None:
        """Queue the turn; raises :class:`StoreError` once the sink is closed."""
        if self._closed:
            raise StoreError(f"the transcript sink {self.inner!r} is closed")
        await self._start_writer().put(turn)  # not started: the first turn starts the writer

    def _start_writer(self) -> asyncio.Queue[TranscriptTurn]:
        """The queue, and the task draining it; created on first use, so both live on the loop serving turns."""
        if self._queue is None:
            self._queue = asyncio.Queue(self.max_queued)
            self._writer = asyncio.create_task(self._drain(), name="transcript writer")
        return self._queue

    async def _drain(self) -> None:
        assert self._queue is not None
        while True:
            turn = await self._queue.get()
            try:
                await self.inner.append(turn)
            except Exception as exc:  # a transcript failure must not stop the writer
                if not self._failing:
                    log.error("transcript append failed (logged once until it recovers): %s: %s",
                              exc.__class__.__name__, one_line(exc))
                    log.debug("transcript append failed", exc_info=exc)
                    self._failing = True
            else:
                if self._failing:
                    log.info("transcript appends work again")
                    self._failing = False
            finally:
                self._queue.task_done()

    async def flush(self) -> None:
        """Wait until every queued turn has been appended (or has failed and been logged)."""
        if self._queue is not None:
            await self._queue.join()

    async def close(self) -> None:
        """Write what is queued, stop the writer, close the sink behind it."""
        if self._closed:
            return
        self._closed = True
        await self.flush()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        await self.inner.close()

    def __repr__(self) -> str:
        return f"BackgroundSink({self.inner!r})"


__all__ = ["DEFAULT_MAX_QUEUED", "BackgroundSink"]
