"""The Redis session store on a real three-node Redis Cluster (the ``redis_cluster`` fixture in tests/conftest.py).

A session's state and lock must hash to one slot (the two-key Lua scripts run on one node), sessions must
spread over the nodes, and concurrent turns must still serialise when the keys live on different nodes.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from redis.asyncio.cluster import RedisCluster

from bot.sessions import RedisSessionStore, SessionState
from bot.sessions.redis import slot_tag
from csbot.errors import ConfigError, StoreError, StoreUnavailableError

#: Ids chosen to trip up a naive hash tag: empty, braces first, last, paired, unpaired, non-ASCII.
AWKWARD_IDS = ["s", "", "}", "{", "{}", "}x", "{a}b", "a{b}c", "a{}b", "x}{y", "{{}}", "日本-42", "slack:T1:C2"]


def test_a_sessions_state_and_lock_share_one_slot_whatever_the_id(redis_cluster, redis_cluster_url):
    store = RedisSessionStore(redis_cluster_url, namespace="shop-a")
    for session_id in AWKWARD_IDS:
        state_key, lock_key = store.session_key(session_id), store.lock_key(session_id)
        assert state_key != lock_key and session_id in state_key
        assert state_key.endswith(f":{session_id}") and f"{{{slot_tag(session_id)}}}" in state_key
        assert redis_cluster.keyslot(state_key) == redis_cluster.keyslot(lock_key), session_id
    # The check can fail: without the hash tag the two names of one session land in different slots.
    assert redis_cluster.keyslot("shop-a:session:s") != redis_cluster.keyslot("shop-a:lock:s")
    # Distinct ids never share a key, even when they look alike around the braces.
    assert len({store.session_key(i) for i in AWKWARD_IDS}) == len(AWKWARD_IDS)


def test_a_namespace_with_braces_is_refused():
    with pytest.raises(ConfigError, match=r"sessions\.namespace must not contain"):
        RedisSessionStore("redis+cluster://127.0.0.1:7000/", namespace="shop{a}")


def test_awkward_ids_round_trip_and_transact_on_the_cluster(redis_cluster_url):
    async def main():
        async with RedisSessionStore(redis_cluster_url, lock_wait_seconds=5) as store:
            for session_id in AWKWARD_IDS:
                async with store.transaction(session_id) as state:  # both keys in one EVALSHA: no CROSSSLOT
                    state.turn_count += 3
                async with store.lock(session_id):
                    loaded = await store.load(session_id)
                    loaded.active_intent = "track_order"
                    await store.save(loaded)
                back = await store.load(session_id)
                assert (back.turn_count, back.active_intent) == (3, "track_order"), session_id
            await store.delete("s")
            assert (await store.load("s")).turn_count == 0

    asyncio.run(main())


def test_sessions_spread_over_more_than_one_node(redis_cluster, redis_cluster_url):
    async def main():
        async with RedisSessionStore(redis_cluster_url) as store:
            for n in range(30):
                await store.save(SessionState(f"customer-{n}", turn_count=n))
            assert [(await store.load(f"customer-{n}")).turn_count for n in range(30)] == list(range(30))

    asyncio.run(main())
    sizes = [int(node.command("DBSIZE").strip()) for node in redis_cluster.nodes]
    assert sum(sizes) == 30
    assert sum(1 for size in sizes if size) >= 2, sizes  # not every session in one slot (or on one node)


def test_concurrent_turns_of_a_session_serialise_across_the_cluster(redis_cluster_url):
    """Two stores (two workers) run 50 turns on each of 10 sessions at once, half through ``transaction`` and
    half through ``lock`` + ``load`` + ``save``; each turn yields between reading and writing, so any turn that
    ran unlocked would lose another's increment."""
    sessions, turns = 10, 50

    async def main():
        async with RedisSessionStore(redis_cluster_url, lock_wait_seconds=60) as one, \
                RedisSessionStore(redis_cluster_url, lock_wait_seconds=60) as two:
            async def turn(store: RedisSessionStore, session_id: str, n: int) -> None:
                if n % 2:
                    async with store.transaction(session_id) as state:
                        seen = state.turn_count
                        await asyncio.sleep(0)
                        state.turn_count = seen + 1
                    return
                async with store.lock(session_id):
                    state = await store.load(session_id)
                    await asyncio.sleep(0)
                    state.turn_count += 1
                    await store.save(state)

            await asyncio.gather(*(turn((one, two)[n % 2], f"busy-{s}", n // 2)
                                   for n in range(turns) for s in range(sessions)))
            return [(await one.load(f"busy-{s}")).turn_count for s in range(sessions)]

    assert asyncio.run(main()) == [turns] * sessions


def test_one_seed_node_url_finds_the_whole_cluster(redis_cluster, redis_cluster_url):
    async def main():
        async with RedisSessionStore(redis_cluster.seed_url) as store:
            assert isinstance(store._redis, RedisCluster)
            for n in range(12):
                async with store.transaction(f"seed-{n}") as state:
                    state.turn_count = n + 1
        async with RedisSessionStore(redis_cluster_url) as other:  # the full node list sees the same state
            return [(await other.load(f"seed-{n}")).turn_count for n in range(12)]

    assert asyncio.run(main()) == list(range(1, 13))


def test_a_single_server_url_pointed_at_a_cluster_node_says_to_use_a_cluster_url(redis_cluster, redis_cluster_url):
    async def main():
        errors = []
        async with RedisSessionStore(f"redis://127.0.0.1:{redis_cluster.ports[0]}/0") as store:
            for n in range(12):  # some of these keys are served by another node: MOVED
                try:
                    await store.save(SessionState(f"moved-{n}"))
                except StoreError as exc:
                    errors.append(exc)
        return errors

    errors = asyncio.run(main())
    assert errors and not isinstance(errors[0], StoreUnavailableError)
    assert "MOVED" in str(errors[0]) and "redis+cluster://" in str(errors[0])


def test_an_unreachable_cluster_is_unavailable_and_the_password_stays_hidden():
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])  # nothing listens on them once closed
    url = f"redis+cluster://ops:s3cret@127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}/"

    async def main():
        store = RedisSessionStore(url, socket_timeout=0.5)
        found = []
        for attempt in (store.start(), store.load("s"), store.transaction("s").__aenter__()):
            with pytest.raises(StoreUnavailableError) as info:
                await attempt
            found.append(str(info.value))
        await store.close()
        return found

    for message in asyncio.run(main()):
        assert "s3cret" not in message and "ops:***@" in message
        assert re.search(rf"127\.0\.0\.1:{ports[0]},127\.0\.0\.1:{ports[1]}", message)
        assert "Redis Cluster" in message
