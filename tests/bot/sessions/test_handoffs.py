"""The list of handed-over conversations, one body for both backends: in memory and in a real Redis."""

from __future__ import annotations

import asyncio

import pytest

from bot.sessions.config import SessionsConfig
from bot.sessions.handoffs import HandoffInfo, MemoryHandoffList, RedisHandoffList, create_handoff_list
from csbot.errors import StoreUnavailableError


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
def make_list(request):
    if request.param == "memory":
        return lambda namespace="csbot": MemoryHandoffList()
    url = request.getfixturevalue("redis_url" if request.param == "redis" else "redis_cluster_url")
    return lambda namespace="csbot": RedisHandoffList(url, namespace)


def test_add_list_newest_first_replace_and_remove(make_list):
    async def scenario():
        handoffs = make_list()
        await handoffs.start()
        try:
            assert await handoffs.list() == []
            await handoffs.add("rest:a", HandoffInfo("rest:a", "rest", "a", "asked", 100.0, "a person please"))
            await handoffs.add("telegram:1", HandoffInfo("telegram:1", "telegram", "1", "failures", 300.0, "ugh"))
            await handoffs.add("rest:b", HandoffInfo("rest:b", "rest", "b", "asked", 200.0, "human"))
            listed = await handoffs.list()
            assert [info.session_id for info in listed] == ["telegram:1", "rest:b", "rest:a"]
            assert listed[2] == HandoffInfo("rest:a", "rest", "a", "asked", 100.0, "a person please")
            await handoffs.add("rest:a", HandoffInfo("rest:a", "rest", "a", "again", 400.0, "ünïcode ✓"))
            listed = await handoffs.list()
            assert [info.session_id for info in listed] == ["rest:a", "telegram:1", "rest:b"]
            assert listed[0].reason == "again" and listed[0].last_message == "ünïcode ✓"
            assert await handoffs.remove("rest:b") is True
            assert await handoffs.remove("rest:b") is False
            assert [info.session_id for info in await handoffs.list()] == ["rest:a", "telegram:1"]
        finally:
            await handoffs.close()

    asyncio.run(scenario())


def test_redis_list_is_shared_between_clients_and_kept_apart_by_namespace(redis_url):
    async def scenario():
        one, two, other = RedisHandoffList(redis_url), RedisHandoffList(redis_url), RedisHandoffList(redis_url, "shop2")
        try:
            await one.add("rest:a", HandoffInfo("rest:a", "rest", "a", "asked", 1.0))
            assert [info.session_id for info in await two.list()] == ["rest:a"]
            assert await other.list() == []
            assert await two.remove("rest:a") and await one.list() == []
        finally:
            for each in (one, two, other):
                await each.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("url", ["redis://:hunter2@127.0.0.1:1/0", "redis+cluster://:hunter2@127.0.0.1:1,127.0.0.1:2"])
def test_redis_list_that_cannot_connect_fails_clearly_without_the_password(url):
    async def scenario():
        handoffs = RedisHandoffList(url, timeout=0.5)
        try:
            with pytest.raises(StoreUnavailableError) as caught:
                await handoffs.start()
            assert "hunter2" not in str(caught.value) and "handoffs" in str(caught.value)
        finally:
            await handoffs.close()

    asyncio.run(scenario())


def test_the_backend_follows_the_session_store():
    assert isinstance(create_handoff_list(SessionsConfig(store="memory")), MemoryHandoffList)
    redis_list = create_handoff_list(SessionsConfig(store="redis", url="redis://127.0.0.1:6390/2", namespace="shop"))
    assert isinstance(redis_list, RedisHandoffList) and redis_list.key == "shop:handoffs"
