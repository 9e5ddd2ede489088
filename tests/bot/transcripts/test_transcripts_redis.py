"""The Redis transcript stream against a real redis-server: append, read, cap, outage."""

from __future__ import annotations

import asyncio

import pytest
from transcript_writer import make_turn

from bot.transcripts import RedisTranscriptStream
from csbot.errors import DataError, StoreError, StoreUnavailableError
from csbot.redis_client import mask_url


def with_password(url: str) -> str:
    """The same server, through the ``default`` user with a password (accepted: it has ``nopass``)."""
    return url.replace("redis://", "redis://default:s3cret@")


def test_append_and_read_all_or_one_session(redis_url):
    async def go():
        import redis.asyncio as aioredis

        stream = RedisTranscriptStream(redis_url, key="test:t")
        for seq in range(6):
            await stream.append(make_turn(f"s{seq % 2}", seq))
        raw = aioredis.Redis.from_url(redis_url)
        entries = await raw.xrange("test:t")
        await raw.aclose()
        everything = await stream.read()
        session = await stream.read("s1")
        newest = await stream.read(count=2)
        newest_of_session = await stream.read("s0", count=2)
        none = await stream.read("nobody")
        await stream.close()
        return entries, everything, session, newest, newest_of_session, none

    entries, everything, session, newest, newest_of_session, none = asyncio.run(go())
    assert len(entries) == 6
    assert entries[1][1][b"session"] == b"s1" and b'"turn":1' in entries[1][1][b"turn"]
    assert [t.to_dict() for t in everything] == [make_turn(f"s{i % 2}", i).to_dict() | {"timestamp": t.timestamp}
                                                for i, t in enumerate(everything)]
    assert [t.turn for t in session] == [1, 3, 5]
    assert [t.turn for t in newest] == [4, 5]
    assert [t.turn for t in newest_of_session] == [2, 4]
    assert none == []


def test_stream_is_capped_near_maxlen_and_keeps_the_newest(redis_url):
    maxlen, total = 50, 600

    async def go():
        stream = RedisTranscriptStream(redis_url, key="test:cap", maxlen=maxlen)
        for seq in range(total):
            await stream.append(make_turn(f"s{seq % 7}", seq))
        length = await stream._client.xlen("test:cap")
        kept = await stream.read()
        latest = await stream.read(count=maxlen)
        await stream.close()
        return length, kept, latest

    length, kept, latest = asyncio.run(go())
    assert maxlen <= length <= maxlen + 100  # MAXLEN ~ trims whole nodes (at most 100 entries each)
    assert [t.turn for t in kept] == list(range(total - length, total))
    assert [t.turn for t in latest] == list(range(total - maxlen, total))


def test_paged_read_of_a_long_stream(redis_url):
    async def go():
        stream = RedisTranscriptStream(redis_url, key="test:long")
        for seq in range(2500):
            await stream.append(make_turn("only" if seq in (3, 1700) else "other", seq))
        result = await stream.read("only"), len(await stream.read()), await stream.read(count=1500)
        await stream.close()
        return result

    only, total, newest = asyncio.run(go())
    assert [t.turn for t in only] == [3, 1700]
    assert total == 2500
    assert [t.turn for t in newest] == list(range(1000, 2500))


def test_stopped_server_is_store_unavailable_with_password_masked(own_redis_server):
    url = with_password(own_redis_server.url)

    async def go():
        stream = RedisTranscriptStream(url, key="test:t")
        await stream.ping()
        await stream.append(make_turn("a", 0))
        own_redis_server.stop()
        errors = []
        for call in (stream.append(make_turn("a", 1)), stream.read(), stream.ping()):
            with pytest.raises(StoreUnavailableError) as caught:
                await call
            errors.append(str(caught.value))
        own_redis_server.start()
        await stream.append(make_turn("a", 2))  # reconnects by itself
        await stream.close()
        return errors

    for message in asyncio.run(go()):
        assert "s3cret" not in message and "default:***@127.0.0.1" in message and "test:t" in message


def test_other_redis_errors_are_store_errors_and_bad_entries_data_errors(redis_url):
    async def go():
        stream = RedisTranscriptStream(redis_url, key="test:str")
        await stream._client.set("test:str", "not a stream")
        with pytest.raises(StoreError) as caught:
            await stream.append(make_turn("a", 0))
        assert not isinstance(caught.value, StoreUnavailableError)
        await stream._client.xadd("test:bad", {"session": "a", "text": "no turn field"})
        with pytest.raises(DataError, match="test:bad"):
            await RedisTranscriptStream(redis_url, key="test:bad").read()
        await stream.close()

    asyncio.run(go())


@pytest.mark.parametrize(("url", "masked"), [
    ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
    ("rediss://user:p%40ss@example.com/2", "rediss://user:***@example.com/2"),
    ("redis://localhost:6379/0", "redis://localhost:6379/0"),
])
def test_mask_url(url, masked):
    assert mask_url(url) == masked


def test_a_turn_appended_twice_by_a_retried_xadd_is_read_once(redis_url):
    """The client retries an XADD whose reply was lost, so the stream may hold a turn twice; reading gives it once,
    while two different turns that only share a session and a text both stay."""

    async def go():
        stream = RedisTranscriptStream(redis_url, key="test:dup")
        first, second = make_turn("s1", 1), make_turn("s1", 2)
        for turn in (first, first, second):
            await stream.append(turn)
        read = await stream.read()
        await stream.close()
        return first, second, read

    first, second, read = asyncio.run(go())
    assert [turn.turn for turn in read] == [1, 2]
    assert read == [first, second]
