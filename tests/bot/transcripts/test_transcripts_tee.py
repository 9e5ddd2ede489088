"""TeeSink: one failing sink never stops the others or the turn, and its error is logged once."""

from __future__ import annotations

import asyncio
import logging

import pytest
from transcript_writer import make_turn

from bot.transcripts import (
    BackgroundSink,
    JsonlTranscriptLog,
    RedisTranscriptStream,
    TeeSink,
    TranscriptsConfig,
    TranscriptSink,
    create_sink,
)
from csbot.errors import ConfigError, StoreUnavailableError
from csbot.settings import load_config
from csbot.transcripts import iter_turns


class Recording(TranscriptSink):
    """Keeps turns in a list; fails while ``broken`` is set."""

    def __init__(self) -> None:
        self.turns, self.broken, self.closed = [], False, False

    async def append(self, turn):
        if self.broken:
            raise RuntimeError("disk on fire")
        self.turns.append(turn)

    async def close(self):
        self.closed = True
        if self.broken:
            raise RuntimeError("cannot close either")


def warnings_of(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bot.transcripts.base" and r.levelno >= logging.WARNING]


def tracebacks_of(caplog) -> list[BaseException]:
    """The errors whose traceback was logged: at debug level only (a warning is one line in the terminal)."""
    records = [r for r in caplog.records if r.name == "bot.transcripts.base" and r.exc_info]
    assert all(r.levelno == logging.DEBUG for r in records)
    return [r.exc_info[1] for r in records]


def test_a_failing_sink_is_logged_once_until_it_recovers(caplog):
    good, bad = Recording(), Recording()
    tee = TeeSink([bad, good])
    bad.broken = True
    caplog.set_level(logging.DEBUG, logger="bot.transcripts")

    async def go(seqs):
        for seq in seqs:
            await tee.append(make_turn("a", seq))

    asyncio.run(go(range(4)))
    assert [t.turn for t in good.turns] == [0, 1, 2, 3] and bad.turns == []
    assert tee.failing == [bad]
    [warning] = warnings_of(caplog)
    assert "disk on fire" in warning.getMessage() and warning.exc_info is None
    [error] = tracebacks_of(caplog)
    assert isinstance(error, RuntimeError)

    bad.broken = False
    asyncio.run(go([4]))
    assert tee.failing == [] and [t.turn for t in bad.turns] == [4]
    assert any("recovered after 4 failed turns" in r.getMessage() for r in caplog.records)
    bad.broken = True
    asyncio.run(go([5, 6]))
    assert len(warnings_of(caplog)) == 2  # a new outage warns again, once
    asyncio.run(tee.close())
    assert good.closed and bad.closed and "cannot close either" in warnings_of(caplog)[-1].getMessage()


def test_jsonl_keeps_every_turn_while_redis_is_down(own_redis_server, tmp_path, caplog):
    path = tmp_path / "t.jsonl"
    caplog.set_level(logging.DEBUG, logger="bot.transcripts")

    async def go():
        stream = RedisTranscriptStream(own_redis_server.url, key="test:tee")
        tee = TeeSink([JsonlTranscriptLog(path), stream])
        for seq in range(2):
            await tee.append(make_turn("a", seq))
        own_redis_server.stop()
        for seq in range(2, 6):
            await tee.append(make_turn("a", seq))  # never raises
        own_redis_server.start()
        await tee.append(make_turn("a", 6))
        in_redis = [t.turn for t in await stream.read()]
        await tee.close()
        return in_redis

    in_redis = asyncio.run(go())
    assert [t.turn for t in iter_turns(path)] == list(range(7))
    assert in_redis == [6]  # the restarted server came back empty; it got the turn after recovery
    [warning] = warnings_of(caplog)
    assert "RedisTranscriptStream" in warning.getMessage() and warning.exc_info is None
    assert any("recovered after 4 failed turns" in r.getMessage() for r in caplog.records)
    [error] = tracebacks_of(caplog)
    assert isinstance(error, StoreUnavailableError)


def test_a_sink_must_implement_the_interface():
    class Half(TranscriptSink):
        async def append(self, turn):
            pass

    with pytest.raises(TypeError, match="close"):
        Half()


def test_config_from_file_and_the_sink_it_builds(tmp_path):
    config = load_config().transcripts  # configs/default.yaml
    assert config == TranscriptsConfig()
    assert config.path == "{home}/logs/transcripts.jsonl" and config.max_bytes == 50 * 1024 * 1024
    assert config.backups == 5 and config.sinks == ["jsonl", "redis_stream"] and config.background
    custom = tmp_path / "c.yaml"
    custom.write_text(f"transcripts:\n  path: {tmp_path / 'x.jsonl'}\n  backups: 2\n")
    loaded = load_config(custom, {"transcripts.backups": 7, "transcripts.max_bytes": None})
    config = loaded.transcripts
    assert (config.path, config.backups, config.max_bytes) == (str(tmp_path / "x.jsonl"), 7, 50 * 1024 * 1024)
    assert loaded.paths.transcripts == tmp_path / "x.jsonl"
    custom.write_text("transcripts:\n  pth: x\n")
    with pytest.raises(ConfigError, match=r"transcripts\.pth"):
        load_config(custom)
    (tmp_path / "conf").mkdir()
    relative = tmp_path / "conf" / "c.yaml"
    relative.write_text("transcripts:\n  path: ../logs/t.jsonl\n")  # relative paths start at the config's folder
    assert load_config(relative).paths.transcripts == tmp_path / "logs" / "t.jsonl"

    path = tmp_path / "logs" / "t.jsonl"
    inline = config.model_copy(update={"background": False})
    only_log = create_sink(inline, path)  # no Redis session store: the stream is left out
    assert isinstance(only_log, TeeSink) and [type(s) for s in only_log.sinks] == [JsonlTranscriptLog]
    assert only_log.sinks[0].path == path and only_log.sinks[0].backups == 7
    tee = create_sink(inline, path, "redis://127.0.0.1:1/0")
    assert isinstance(tee, TeeSink) and [type(s) for s in tee.sinks] == [JsonlTranscriptLog, RedisTranscriptStream]
    assert (tee.sinks[1].key, tee.sinks[1].maxlen) == ("csbot:transcripts", 100_000)
    no_stream = create_sink(inline.model_copy(update={"redis_stream": False}), path, "redis://x/0")
    assert [type(s) for s in no_stream.sinks] == [JsonlTranscriptLog]
    queued = create_sink(config.model_copy(update={"max_queued": 3}), path, "redis://127.0.0.1:1/0")
    assert isinstance(queued, BackgroundSink) and queued.max_queued == 3
    assert isinstance(queued.inner, TeeSink) and [type(s) for s in queued.inner.sinks] == [JsonlTranscriptLog,
                                                                                          RedisTranscriptStream]
