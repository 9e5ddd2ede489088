"""MicroBatcher: concurrent submits coalesce into batched calls run in a worker thread."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from bot.batching import MicroBatcher


class Recorder:
    """A batched function that remembers each batch it got and the thread it ran in."""

    def __init__(self, fail_on: object = None) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[int] = set()
        self.fail_on = fail_on

    def __call__(self, items: list[int]) -> list[str]:
        self.batches.append(list(items))
        self.threads.add(threading.get_ident())
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"cannot handle {self.fail_on}")
        return [f"r{item}" for item in items]


def test_concurrent_submits_are_one_batch_run_off_the_event_loop():
    fn = Recorder()
    batcher = MicroBatcher(fn, max_batch=32, max_wait_ms=20)

    async def main():
        return await asyncio.gather(*(batcher.submit(i) for i in range(10)))

    assert asyncio.run(main()) == [f"r{i}" for i in range(10)]
    assert len(fn.batches) == 1 and sorted(fn.batches[0]) == list(range(10))
    assert batcher.batches == 1
    assert threading.get_ident() not in fn.threads


def test_max_batch_is_respected_and_every_item_runs_once():
    fn = Recorder()
    batcher = MicroBatcher(fn, max_batch=4, max_wait_ms=20)

    async def main():
        return await asyncio.gather(*(batcher.submit(i) for i in range(10)))

    assert asyncio.run(main()) == [f"r{i}" for i in range(10)]
    assert all(len(b) <= 4 for b in fn.batches)
    assert sorted(len(b) for b in fn.batches) == [2, 4, 4]
    assert sorted(i for b in fn.batches for i in b) == list(range(10))


def test_a_full_batch_runs_without_waiting_for_the_timer():
    fn = Recorder()
    batcher = MicroBatcher(fn, max_batch=3, max_wait_ms=10_000)

    async def main():
        started = time.perf_counter()
        results = await asyncio.gather(*(batcher.submit(i) for i in range(3)))
        return results, time.perf_counter() - started

    results, elapsed = asyncio.run(main())
    assert results == ["r0", "r1", "r2"] and elapsed < 5


def test_each_caller_gets_its_own_result_in_order():
    def fn(items: list[int]) -> list[int]:
        time.sleep(0.01 * (items[0] % 3))  # batches finish out of order
        return [item * 10 for item in items]

    batcher = MicroBatcher(fn, max_batch=3, max_wait_ms=5)

    async def one(i: int) -> tuple[int, int]:
        await asyncio.sleep(0.001 * (i % 4))  # callers arrive spread over several batches
        return i, await batcher.submit(i)

    async def main():
        return await asyncio.gather(*(one(i) for i in range(20)))

    pairs = asyncio.run(main())
    assert pairs == [(i, i * 10) for i in range(20)]
    assert batcher.batches >= 7


def test_a_failing_item_fails_only_its_own_caller():
    """Issue 12: one item the batched call cannot take no longer fails every caller of its batch; the batch
    is run again item by item, and only that item's caller gets the exception."""
    fn = Recorder(fail_on=3)
    batcher = MicroBatcher(fn, max_batch=5, max_wait_ms=20)

    async def main():
        first = await asyncio.gather(*(batcher.submit(i) for i in range(5)), return_exceptions=True)
        later = await asyncio.gather(*(batcher.submit(i) for i in range(5, 8)))
        return first, later

    first, later = asyncio.run(main())
    assert first[:3] == ["r0", "r1", "r2"] and first[4] == "r4"
    assert isinstance(first[3], ValueError) and str(first[3]) == "cannot handle 3"
    assert later == ["r5", "r6", "r7"]
    assert fn.batches[0] == [0, 1, 2, 3, 4] and fn.batches[1:6] == [[0], [1], [2], [3], [4]]  # then one by one
    assert fn.batches[6:] == [[5, 6, 7]]  # batching goes on as before


def test_a_batch_that_fails_for_every_item_fails_each_caller():
    fn = Recorder(fail_on=None)

    def broken(items: list[int]) -> list[str]:
        fn(items)
        raise RuntimeError("the model is gone")

    batcher = MicroBatcher(broken, max_batch=8, max_wait_ms=5)

    async def main():
        return await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) and str(r) == "the model is gone" for r in results)
    assert fn.batches == [[0, 1, 2], [0], [1], [2]]


def test_one_by_one_skips_callers_that_gave_up():
    fn = Recorder(fail_on=1)
    batcher = MicroBatcher(fn, max_batch=16, max_wait_ms=20)

    async def main():
        quitter = asyncio.ensure_future(batcher.submit(0))
        others = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2)]
        await asyncio.sleep(0)
        quitter.cancel()
        return await asyncio.gather(*others, return_exceptions=True)

    failed, fine = asyncio.run(main())
    assert isinstance(failed, ValueError) and fine == "r2"
    assert fn.batches == [[0, 1, 2], [1], [2]]


def test_a_wrong_number_of_results_fails_the_batch():
    batcher = MicroBatcher(lambda items: items[:-1], max_batch=8, max_wait_ms=5)

    async def main():
        return await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)

    results = asyncio.run(main())  # and each item alone: no result for one item either
    assert all(isinstance(r, RuntimeError) and "0 results for 1 items" in str(r) for r in results)


def test_works_across_separate_event_loops():
    fn = Recorder()
    batcher = MicroBatcher(fn, max_batch=16, max_wait_ms=5)

    async def main(offset: int):
        return await asyncio.gather(*(batcher.submit(offset + i) for i in range(4)))

    assert asyncio.run(main(0)) == ["r0", "r1", "r2", "r3"]
    assert asyncio.run(main(10)) == ["r10", "r11", "r12", "r13"]
    assert len(fn.batches) == 2


def test_a_caller_that_gave_up_in_an_earlier_loop_does_not_stall_the_next_one():
    fn = Recorder()
    batcher = MicroBatcher(fn, max_batch=16, max_wait_ms=50)

    async def give_up():
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(batcher.submit(1), 0.001)

    async def second():
        return await asyncio.wait_for(batcher.submit(2), 5)

    asyncio.run(give_up())  # the loop ends with the item queued and its flush timer pending
    assert asyncio.run(second()) == "r2"
    assert fn.batches == [[2]]


def test_a_caller_that_gives_up_does_not_break_its_batch():
    fn = Recorder()
    batcher = MicroBatcher(fn, max_batch=16, max_wait_ms=20)

    async def main():
        quitter = asyncio.ensure_future(batcher.submit(1))
        others = [asyncio.ensure_future(batcher.submit(i)) for i in (2, 3)]
        await asyncio.sleep(0)
        quitter.cancel()
        return await asyncio.gather(*others)

    assert asyncio.run(main()) == ["r2", "r3"]
    assert fn.batches == [[1, 2, 3]]


# -- one batch at a time: the next one collects while the current one runs ------------------------------------


class Gate:
    """A batched function that blocks each call until released, counting the calls running at once."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.running = 0
        self.most_at_once = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, items: list[int]) -> list[str]:
        with self._lock:
            self.batches.append(list(items))
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.entered.set()
        try:
            assert self.release.wait(10), "never released"
            return [f"r{item}" for item in items]
        finally:
            with self._lock:
                self.running -= 1


def test_one_batch_runs_at_a_time_and_the_next_collects_meanwhile():
    fn = Gate()
    batcher = MicroBatcher(fn, max_batch=32, max_wait_ms=1)

    async def main():
        first = asyncio.ensure_future(batcher.submit(0))
        while not fn.entered.is_set():  # the first batch is running (blocked) in the executor
            await asyncio.sleep(0.001)
        later = []
        for i in range(1, 11):  # arrive one by one, each well past the batching window
            later.append(asyncio.ensure_future(batcher.submit(i)))
            await asyncio.sleep(0.005)
        assert batcher.running and len(fn.batches) == 1 and batcher.in_flight == 11
        fn.release.set()
        return await asyncio.gather(first, *later)

    assert asyncio.run(main()) == [f"r{i}" for i in range(11)]
    assert fn.batches == [[0], list(range(1, 11))]
    assert fn.most_at_once == 1 and batcher.batches == 2


def test_the_next_batch_takes_at_most_max_batch_and_the_rest_follows():
    fn = Gate()
    batcher = MicroBatcher(fn, max_batch=4, max_wait_ms=1)

    async def main():
        first = asyncio.ensure_future(batcher.submit(0))
        while not fn.entered.is_set():
            await asyncio.sleep(0.001)
        later = [asyncio.ensure_future(batcher.submit(i)) for i in range(1, 10)]
        await asyncio.sleep(0.02)
        fn.release.set()
        return await asyncio.gather(first, *later)

    assert asyncio.run(main()) == [f"r{i}" for i in range(10)]
    assert fn.batches == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]] and fn.most_at_once == 1


def test_max_batch_one_is_one_call_per_item_one_at_a_time():
    fn = Gate()
    fn.release.set()
    sizes: list[int] = []
    batcher = MicroBatcher(fn, max_batch=1, max_wait_ms=20, on_batch=sizes.append)

    async def main():
        return await asyncio.gather(*(batcher.submit(i) for i in range(5)))

    assert asyncio.run(main()) == [f"r{i}" for i in range(5)]
    assert fn.batches == [[i] for i in range(5)] and fn.most_at_once == 1 and sizes == [1] * 5


def test_on_batch_sees_each_batch_size_and_a_failing_hook_costs_nothing():
    sizes: list[int] = []
    fn = Recorder()
    batcher = MicroBatcher(fn, max_batch=4, max_wait_ms=5, on_batch=sizes.append)

    async def main():
        return await asyncio.gather(*(batcher.submit(i) for i in range(6)))

    assert asyncio.run(main()) == [f"r{i}" for i in range(6)]
    assert sizes == [4, 2]

    def broken(size: int) -> None:
        raise RuntimeError("metrics are down")

    batcher.on_batch = broken
    assert asyncio.run(main()) == [f"r{i}" for i in range(6)]


def test_drain_waits_for_the_running_batch_and_runs_what_collected_behind_it():
    fn = Gate()
    batcher = MicroBatcher(fn, max_batch=8, max_wait_ms=10_000)  # only drain starts a batch here

    async def main():
        first = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0)
        draining = asyncio.ensure_future(batcher.drain())
        while not fn.entered.is_set():
            await asyncio.sleep(0.001)
        behind = asyncio.ensure_future(batcher.submit(1))
        await asyncio.sleep(0.01)
        assert not draining.done()
        fn.release.set()
        await asyncio.wait_for(draining, 5)
        assert first.done() and behind.done() and not batcher.running and batcher.in_flight == 0
        return first.result(), behind.result()

    assert asyncio.run(main()) == ("r0", "r1")
    assert fn.batches == [[0], [1]]
