"""BackgroundSink: appends return at once, turns are written in order, a clean close writes them all."""

from __future__ import annotations

import asyncio
import logging

import pytest
from transcript_writer import make_turn

from bot.transcripts import BackgroundSink, JsonlTranscriptLog, TeeSink, TranscriptsConfig, TranscriptSink, create_sink
from csbot.errors import StoreError
from csbot.transcripts import iter_turns


class Gated(TranscriptSink):
    """Records turns, but each append waits until ``open`` is set; fails while ``broken`` is set."""

    def __init__(self) -> None:
        self.turns, self.broken, self.closed = [], False, False
        self.open = asyncio.Event()

    async def append(self, turn):
        await self.open.wait()
        if self.broken:
            raise RuntimeError("disk on fire")
        self.turns.append(turn.turn)

    async def close(self):
        self.closed = True


def test_append_returns_before_the_write_and_close_writes_everything_in_order():
    async def main():
        inner = Gated()
        sink = BackgroundSink(inner)
        for seq in range(20):
            await asyncio.wait_for(sink.append(make_turn("a", seq)), 1)  # the blocked write does not hold it up
        await asyncio.sleep(0.01)
        assert inner.turns == [] and sink.queued >= 19
        inner.open.set()
        await sink.flush()
        assert inner.turns == list(range(20)) and sink.queued == 0
        await sink.append(make_turn("a", 20))
        await sink.close()  # drains first
        assert inner.turns == list(range(21)) and inner.closed
        with pytest.raises(StoreError, match="closed"):
            await sink.append(make_turn("a", 21))
        await sink.close()  # a second close is harmless

    asyncio.run(main())


def test_a_full_queue_makes_the_next_turn_wait_instead_of_dropping_it():
    async def main():
        inner = Gated()
        sink = BackgroundSink(inner, max_queued=2)
        for seq in range(3):  # one taken by the writer (blocked), two queued
            await sink.append(make_turn("a", seq))
            await asyncio.sleep(0)
        waiting = asyncio.create_task(sink.append(make_turn("a", 3)))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        inner.open.set()
        await asyncio.wait_for(waiting, 1)
        await sink.close()
        assert inner.turns == [0, 1, 2, 3]

    asyncio.run(main())


def test_a_failing_sink_is_logged_once_and_the_writer_goes_on(caplog):
    caplog.set_level(logging.INFO, logger="bot.transcripts.background")

    async def main():
        inner = Gated()
        inner.open.set()
        inner.broken = True
        sink = BackgroundSink(inner)
        for seq in range(3):
            await sink.append(make_turn("a", seq))
        await sink.flush()
        inner.broken = False
        await sink.append(make_turn("a", 3))
        await sink.close()
        assert inner.turns == [3]

    asyncio.run(main())
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "disk on fire" in errors[0].getMessage()
    assert any("work again" in r.getMessage() for r in caplog.records)


def test_start_and_ping_reach_the_sinks_behind_it(tmp_path):
    class Lifecycle(Gated):
        def __init__(self) -> None:
            super().__init__()
            self.calls = []

        async def start(self):
            self.calls.append("start")

        async def ping(self):
            self.calls.append("ping")

    async def main():
        first, second = Lifecycle(), Lifecycle()
        sink = BackgroundSink(TeeSink([first, second]))
        await sink.start()
        await sink.ping()
        assert first.calls == second.calls == ["start", "ping"]
        first.open.set()
        second.open.set()
        await sink.append(make_turn("a", 0))  # the writer started by start() drains the queue
        await sink.flush()
        assert first.turns == second.turns == [0]
        await sink.close()
        with pytest.raises(StoreError, match="closed"):
            await sink.start()

    asyncio.run(main())
    with pytest.raises(ValueError):
        BackgroundSink(JsonlTranscriptLog(tmp_path / "t.jsonl"), max_queued=0)


def test_a_real_log_behind_the_queue_gets_every_turn(tmp_path):
    path = tmp_path / "t.jsonl"

    async def main():
        sink = create_sink(TranscriptsConfig(), path)
        assert isinstance(sink, BackgroundSink)
        await sink.start()
        await sink.ping()
        await asyncio.gather(*(sink.append(make_turn(f"s{i % 3}", i)) for i in range(200)))
        await sink.close()

    asyncio.run(main())
    assert sorted(t.turn for t in iter_turns(path)) == list(range(200))
