"""Coalescing concurrent async calls into one batched call in a worker thread.

The NLU model and the embedding model are far cheaper per item in a batch than one by one; turns of
different conversations that arrive within a few milliseconds are parsed together, off the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """``await batcher.submit(item)`` runs ``fn`` on a batch of up to ``max_batch`` items gathered within
    ``max_wait_ms``, in the loop's default executor; an exception fails every call of that batch.

    Every batch runs as a task the batcher keeps until it ends, so :meth:`drain` can wait for the calls in
    flight when the bot stops (nothing is fire-and-forget).
    """

    def __init__(self, fn: Callable[[list[T]], Sequence[R]], max_batch: int = 32, max_wait_ms: float = 2.0) -> None:
        self.fn = fn
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A new event loop (``asyncio.run`` again): a timer and waiters an earlier loop left behind (its
            # callers gave up before their batch ran) can never run or be answered there; drop them, or
            # this loop's calls would wait for that dead timer forever.
            self._loop, self._timer, self._pending, self._tasks = loop, None, [], set()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.max_wait, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
        if self._pending:
            self._timer = asyncio.get_running_loop().call_later(self.max_wait, self._flush)
        if batch:
            self.batches += 1
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @property
    def in_flight(self) -> int:
        """Batches running now plus items waiting for the next one."""
        return len(self._tasks) + len(self._pending)

    async def drain(self) -> None:
        """Run what is waiting now and wait until every batch in flight has answered its callers."""
        if self._loop is not asyncio.get_running_loop():
            return  # nothing of this loop is pending
        if self._pending:
            self._flush()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
            if self._pending:
                self._flush()

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(None, self.fn, [item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"batched call returned {len(results)} results for {len(batch)} items")
        except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
