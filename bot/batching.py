"""Coalescing concurrent async calls into one batched call in a worker thread.

The NLU model and the embedding model are far cheaper per item in a batch than one by one; turns of
different conversations that arrive within a few milliseconds are parsed together, off the event loop.
One bad item (a text the model cannot take) must not cost the other conversations of its batch their
answer: a batch that fails is run again item by item, and only the items that fail alone get the error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


class MicroBatcher(Generic[T, R]):
    """``await batcher.submit(item)`` runs ``fn`` on a batch of up to ``max_batch`` items gathered within
    ``max_wait_ms``, in the loop's default executor. When the batched call raises (or returns the wrong
    number of results), the batch's items are run again one by one: each caller gets its own result, and
    only a caller whose item fails alone gets an exception (its own).

    At most one batch runs at a time: while it runs, the next one collects (up to ``max_batch`` items) and
    starts as soon as it ends, so under load the batches grow instead of several small ones fighting over
    the cores in parallel threads. ``max_batch=1`` is no batching: one call per item, one after the other.
    ``on_batch(size)``, when given, is called on the event loop as each batch starts (metrics).

    The running batch is a task the batcher keeps until it ends, so :meth:`drain` can wait for the calls in
    flight when the bot stops (nothing is fire-and-forget).
    """

    def __init__(self, fn: Callable[[list[T]], Sequence[R]], max_batch: int = 32, max_wait_ms: float = 2.0,
                 on_batch: Callable[[int], object] | None = None) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.fn = fn
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.on_batch = on_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: asyncio.Task[None] | None = None
        self.batches = 0

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A new event loop (``asyncio.run`` again): a timer, a batch task and waiters an earlier loop left
            # behind (its callers gave up before their batch ran) can never run or be answered there; drop
            # them, or this loop's calls would wait for that dead timer or task forever.
            self._loop, self._timer, self._pending, self._running = loop, None, [], None
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if self._running is None:
            if len(self._pending) >= self.max_batch:
                self._flush()
            elif self._timer is None:
                self._timer = loop.call_later(self.max_wait, self._flush)
        # else: the running batch starts the next one when it ends
        return await future

    def _flush(self) -> None:
        """Start the next batch now, unless one is running (it starts the next one when it ends)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._running is not None:
            return
        batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
        if not batch:
            return
        self.batches += 1
        if self.on_batch is not None:
            try:
                self.on_batch(len(batch))
            except Exception:  # a metrics hook never costs a turn its answer
                log.exception("the on_batch hook failed")
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._running = task
        task.add_done_callback(self._batch_done)

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        if self._running is task:
            self._running = None
            if self._pending:
                self._flush()  # the items that collected meanwhile have waited long enough

    @property
    def running(self) -> bool:
        """Whether a batch is running now."""
        return self._running is not None

    @property
    def in_flight(self) -> int:
        """Batches running now plus items waiting for the next one."""
        return int(self._running is not None) + len(self._pending)

    async def drain(self) -> None:
        """Run what is waiting now and wait until every batch in flight has answered its callers."""
        if self._loop is not asyncio.get_running_loop():
            return  # nothing of this loop is pending
        while self._running is not None or self._pending:
            if self._running is None:
                self._flush()
                if self._running is None:
                    break  # only callers that gave up were waiting
            await asyncio.gather(self._running, return_exceptions=True)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(None, self._call, [item for item, _ in batch])
        except Exception as exc:  # noqa: BLE001 - retried item by item below
            if len(batch) == 1:
                _fail(batch[0][1], exc)
                return
            waiting = [(item, future) for item, future in batch if not future.done()]
            log.warning("a batch of %d items failed (%s: %s); running its %d waiting items one by one",
                        len(batch), exc.__class__.__name__, exc, len(waiting))
            outcomes = await loop.run_in_executor(None, self._one_by_one, [item for item, _ in waiting])
            for (_, future), (result, error) in zip(waiting, outcomes, strict=True):
                if error is not None:
                    _fail(future, error)
                elif not future.done():
                    future.set_result(result)  # type: ignore[arg-type]
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    def _call(self, items: list[T]) -> Sequence[R]:
        results = self.fn(items)
        if len(results) != len(items):
            raise RuntimeError(f"batched call returned {len(results)} results for {len(items)} items")
        return results

    def _one_by_one(self, items: list[T]) -> list[tuple[R | None, Exception | None]]:
        """Each item's (result, None), or (None, the exception its call alone raised); run in the executor."""
        outcomes: list[tuple[R | None, Exception | None]] = []
        for item in items:
            try:
                outcomes.append((self._call([item])[0], None))
            except Exception as exc:  # noqa: BLE001 - handed to that item's caller only
                outcomes.append((None, exc))
        return outcomes


def _fail(future: asyncio.Future[R], exc: Exception) -> None:
    if not future.done():  # a caller that gave up is not answered
        future.set_exception(exc)
