"""Building the transcript sink from config through the plug-in registry, and its start-up checks.

``create_sink`` resolves each of ``transcripts.sinks`` (a registered name or a dotted path); ``start`` and
``ping`` reach every sink through the queue and the tee, a real Redis stream pings a real redis-server.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from sink_helpers import ListSink, PlainSink
from transcript_writer import make_turn

from bot.transcripts import (
    BackgroundSink,
    JsonlTranscriptLog,
    RedisTranscriptStream,
    TeeSink,
    TranscriptsConfig,
    create_sink,
)
from csbot.errors import ConfigError, StoreError, StoreUnavailableError
from csbot.plugins import TRANSCRIPT_SINKS
from csbot.settings import load_config
from csbot.transcripts import iter_turns


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_registry_knows_the_built_in_sinks():
    assert TRANSCRIPT_SINKS.names() == ["jsonl", "redis_stream"]
    assert TRANSCRIPT_SINKS.resolve("jsonl") is JsonlTranscriptLog
    assert TRANSCRIPT_SINKS.resolve("redis_stream") is RedisTranscriptStream


@pytest.mark.parametrize(("name", "why"), [
    ("kafka", "unknown"),
    ("no_such_module_xyz:Sink", "cannot import"),
    ("sink_helpers:Missing", "no attribute"),
    ("sink_helpers:NotASink", "not a subclass of bot.transcripts.base.TranscriptSink"),
    ("sink_helpers:HalfSink", "does not implement close"),
    ("sink_helpers:NeedsArguments", "cannot be built from the transcripts config"),
])
def test_a_sink_that_cannot_be_used_is_a_config_error_naming_the_setting(tmp_path, name, why):
    config = TranscriptsConfig(sinks=["jsonl", name])
    with pytest.raises(ConfigError) as info:
        create_sink(config, tmp_path / "t.jsonl")
    message = str(info.value)
    assert "transcripts.sinks" in message and repr(name) in message and why in message


def test_sink_names_are_checked_when_the_config_is_read(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("transcripts:\n  sinks: [jsonl, jsonl]\n")
    with pytest.raises(ConfigError, match=r"transcripts\.sinks.*twice"):
        load_config(path)
    path.write_text("transcripts:\n  sinks: [jsonl, kafka]\n")
    config = load_config(path)  # a name is resolved (and refused) when the sink is built
    with pytest.raises(ConfigError, match=r"transcripts\.sinks: unknown 'kafka'"):
        create_sink(config.transcripts, config.paths.transcripts)


@pytest.mark.parametrize("dotted", ["sink_helpers:ListSink", "sink_helpers.ListSink"])
def test_a_dotted_path_plugs_in_a_sink_of_ones_own(tmp_path, dotted):
    path = tmp_path / "t.jsonl"
    config = TranscriptsConfig(sinks=["jsonl", dotted, "sink_helpers:PlainSink"], stream_key="mine",
                               background=False)
    sink = create_sink(config, path, "redis://127.0.0.1:1/0")  # no redis_stream: it is not in the list
    assert isinstance(sink, TeeSink)
    log, mine, plain = sink.sinks
    assert isinstance(log, JsonlTranscriptLog) and isinstance(mine, ListSink) and isinstance(plain, PlainSink)
    assert mine.tag == "mine"  # built by its own from_config

    async def main():
        async with sink:  # starts, then closes
            await sink.ping()
            await sink.append(make_turn("a", 0))

    asyncio.run(main())
    assert mine.calls == ["start", "ping"] and [t.turn for t in mine.turns] == [0] and mine.closed
    assert [t.turn for t in iter_turns(path)] == [0]


def test_start_opens_the_log_and_an_unwritable_path_fails_there(tmp_path):
    path = tmp_path / "logs" / "t.jsonl"

    async def main():
        sink = create_sink(TranscriptsConfig(), path)
        await sink.start()
        assert path.is_file()  # opened (and created) before the first turn
        await sink.close()
        (tmp_path / "file").write_text("")
        blocked = create_sink(TranscriptsConfig(), tmp_path / "file" / "t.jsonl")
        with pytest.raises(StoreError, match="cannot open the transcript log"):
            await blocked.start()
        await blocked.close()

    asyncio.run(main())


def test_start_and_ping_reach_a_real_redis_stream_through_the_queue_and_the_tee(redis_url, tmp_path):
    path = tmp_path / "t.jsonl"

    async def main():
        sink = create_sink(TranscriptsConfig(stream_key="test:ping"), path, redis_url)
        assert isinstance(sink, BackgroundSink)
        await sink.start()
        await sink.ping()  # what the app does at start-up
        await sink.append(make_turn("a", 0))
        await sink.flush()
        stream = RedisTranscriptStream(redis_url, key="test:ping")
        in_redis = [t.turn for t in await stream.read()]
        await stream.close()
        await sink.close()
        return in_redis

    assert asyncio.run(main()) == [0]
    assert [t.turn for t in iter_turns(path)] == [0]


def test_ping_of_a_redis_stream_whose_server_is_down_is_store_unavailable(tmp_path):
    port = free_port()
    url = f"redis://default:s3cret@127.0.0.1:{port}/0"

    async def main():
        sink = create_sink(TranscriptsConfig(stream_key="test:down"), tmp_path / "t.jsonl", url)
        await sink.start()  # the JSONL log opens; Redis connects lazily
        with pytest.raises(StoreUnavailableError) as info:
            await sink.ping()
        await sink.close()
        return str(info.value)

    message = asyncio.run(main())
    assert f"redis://default:***@127.0.0.1:{port}/0" in message and "s3cret" not in message
    assert "test:down" in message and "redis-server" in message


def test_ping_of_a_stopped_server_through_the_tee(own_redis_server, tmp_path):
    async def main():
        sink = create_sink(TranscriptsConfig(background=False), tmp_path / "t.jsonl", own_redis_server.url)
        await sink.start()
        await sink.ping()
        own_redis_server.stop()
        with pytest.raises(StoreUnavailableError):
            await sink.ping()
        await sink.append(make_turn("a", 0))  # a turn is still recorded in the log, never fails
        own_redis_server.start()
        await sink.ping()  # reconnects by itself
        await sink.close()

    asyncio.run(main())
    assert [t.turn for t in iter_turns(tmp_path / "t.jsonl")] == [0]
