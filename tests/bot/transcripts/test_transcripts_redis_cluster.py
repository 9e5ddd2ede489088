"""The Redis transcript stream on a real three-node Redis Cluster (``redis_cluster`` in tests/conftest.py)."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio.cluster import RedisCluster
from transcript_writer import make_turn

from bot.transcripts import RedisTranscriptStream
from csbot.errors import StoreUnavailableError


@pytest.mark.parametrize("key", ["csbot:transcripts", "{shop-a}:transcripts"])
def test_append_and_read_back_on_the_cluster(redis_cluster, redis_cluster_url, key):
    async def go():
        stream = RedisTranscriptStream(redis_cluster_url, key=key)
        assert isinstance(stream._client, RedisCluster)
        await stream.ping()
        await asyncio.gather(*(stream.append(make_turn(f"s{seq % 3}", seq)) for seq in range(30)))
        everything = await stream.read()
        one_session = await stream.read("s1")
        newest = await stream.read(count=4)
        newest_of_session = await stream.read("s2", count=2)
        length = await stream._client.xlen(key)
        await stream.close()
        return everything, one_session, newest, newest_of_session, length

    everything, one_session, newest, newest_of_session, length = asyncio.run(go())
    assert length == 30 and sorted(t.turn for t in everything) == list(range(30))
    assert all(t.session_id == "s1" for t in one_session) and sorted(t.turn for t in one_session) == list(range(1, 30, 3))
    assert [t.turn for t in newest] == [t.turn for t in everything[-4:]]
    assert [t.turn for t in newest_of_session] == [t.turn for t in everything if t.session_id == "s2"][-2:]
    # the stream is one key: all of it on the node that serves its slot, none of it anywhere else
    sizes = [int(node.command("DBSIZE").strip()) for node in redis_cluster.nodes]
    assert sorted(sizes) == [0, 0, 1]


def test_the_stream_through_one_seed_node_sees_what_the_full_url_wrote(redis_cluster, redis_cluster_url):
    async def go():
        writer = RedisTranscriptStream(redis_cluster_url, key="csbot:transcripts")
        reader = RedisTranscriptStream(redis_cluster.seed_url, key="csbot:transcripts")
        for seq in range(5):
            await writer.append(make_turn("shopper", seq))
        turns = await reader.read("shopper")
        await writer.close()
        await reader.close()
        return turns

    assert [t.turn for t in asyncio.run(go())] == [0, 1, 2, 3, 4]


def test_an_unreachable_cluster_is_unavailable_without_the_password():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens on it once closed
    url = f"rediss+cluster://:hunter2@127.0.0.1:{port}/"

    async def go():
        stream = RedisTranscriptStream(url, key="k", timeout=0.5)
        messages = []
        for attempt in (stream.ping(), stream.append(make_turn("s", 0)), stream.read()):
            with pytest.raises(StoreUnavailableError) as info:
                await attempt
            messages.append(str(info.value))
        await stream.close()
        return messages

    for message in asyncio.run(go()):
        assert "hunter2" not in message and f"rediss+cluster://:***@127.0.0.1:{port}/" in message
        assert "transcript stream 'k'" in message
