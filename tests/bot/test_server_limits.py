"""The server's protections over real loopback sockets: the bounded turn queue (503 + Retry-After), the
per-sender rate limit in memory and in a real Redis shared by two servers (429 + Retry-After), neither
reaching the dialogue manager, a Redis outage letting messages through, and the batch-size and queue metrics.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from test_dialogue import KeywordUnderstander
from test_server import WEBHOOK, demo_bot, rest_app

from bot.app import BotApp
from bot.channels.rest import RestChannel, RestConfig
from bot.config import ServerConfig
from bot.server import build_app
from bot.server.limits import MemoryRateLimiter, RedisRateLimiter, create_limiter
from csbot.settings import load_config


class BlockingUnderstander(KeywordUnderstander):
    """Keyword rules, except that a text starting with "block" waits until :attr:`release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.blocked = 0

    async def parse(self, text):
        if text.startswith("block"):
            self.blocked += 1
            await self.release.wait()
        return await super().parse(text)


async def post(http: aiohttp.ClientSession, url: str, sender: str, text: str = "hello") -> tuple[int, dict, object]:
    async with http.post(f"{url}{WEBHOOK}", json={"sender": sender, "message": text}) as response:
        return response.status, dict(response.headers), await response.json()


# -- the bounded queue -----------------------------------------------------------------------------------------


def test_a_full_queue_answers_503_with_retry_after_and_never_reaches_the_manager(loopback_server):
    async def scenario():
        understander = BlockingUnderstander()
        bot = demo_bot(understander)
        await bot.start()
        app = rest_app(bot, max_queued_turns=2, retry_after_seconds=7, rate_limit_per_minute=0)
        try:
            async with loopback_server(app) as url, aiohttp.ClientSession() as http:
                held = [asyncio.create_task(post(http, url, f"s{i}", "block please")) for i in range(2)]
                while understander.blocked < 2:
                    await asyncio.sleep(0.005)
                calls = list(understander.calls)
                status, headers, body = await post(http, url, "third", "hello")
                assert status == 503 and headers["Retry-After"] == "7"
                assert body["error"]["status"] == 503 and "busy" in body["error"]["message"]
                assert understander.calls == calls  # the manager never saw it
                understander.release.set()
                assert [status for status, _, _ in await asyncio.gather(*held)] == [200, 200]
                assert (await post(http, url, "third", "hello"))[0] == 200  # room again
                async with http.get(f"{url}/metrics") as response:
                    return await response.text()
        finally:
            await bot.stop()

    lines = set(asyncio.run(scenario()).splitlines())
    assert 'csbot_turns_rejected_total{channel="rest",reason="overloaded"} 1.0' in lines
    assert 'csbot_http_requests_total{channel="rest",status="503"} 1.0' in lines
    assert "csbot_turns_in_flight 0.0" in lines


# -- the rate limit ----------------------------------------------------------------------------------------------


def test_a_sender_over_the_limit_gets_429_and_others_go_on(loopback_server):
    async def scenario():
        understander = KeywordUnderstander()
        bot = demo_bot(understander)
        await bot.start()
        try:
            async with (loopback_server(rest_app(bot, rate_limit_per_minute=3, retry_after_seconds=1)) as url,
                        aiohttp.ClientSession() as http):
                assert [(await post(http, url, "ann"))[0] for _ in range(3)] == [200, 200, 200]
                calls = list(understander.calls)
                status, headers, body = await post(http, url, "ann")
                assert understander.calls == calls
                assert (await post(http, url, "bob"))[0] == 200
                return status, headers, body
        finally:
            await bot.stop()

    status, headers, body = asyncio.run(scenario())
    assert status == 429 and 1 <= int(headers["Retry-After"]) <= 60
    assert body["error"]["status"] == 429 and "at most 3 a minute" in body["error"]["message"]


def redis_bot(redis_url: str, understander: KeywordUnderstander) -> BotApp:
    """The keyword demo bot whose config says sessions live in Redis (so the rate limit does too)."""
    config = load_config(None, {"sessions.store": "redis", "sessions.url": redis_url, "sessions.namespace": "lim"})
    return BotApp.for_manager(demo_bot(understander).manager, config)


def test_the_redis_rate_limit_holds_across_two_servers(loopback_server, redis_url):
    import redis

    async def scenario():
        understanders = [KeywordUnderstander(), KeywordUnderstander()]
        bots = [redis_bot(redis_url, understander) for understander in understanders]
        apps = [build_app(bot, [RestChannel(RestConfig())], ServerConfig(rate_limit_per_minute=3)) for bot in bots]
        for bot in bots:
            await bot.start()
        try:
            async with (loopback_server(apps[0]) as first, loopback_server(apps[1]) as second,
                        aiohttp.ClientSession() as http):
                statuses = [(await post(http, url, "ann"))[0] for url in (first, second, first, second, first)]
                other = (await post(http, second, "bob"))[0]
        finally:
            for bot in bots:
                await bot.stop()
        return statuses, other, [len(u.calls) for u in understanders]

    statuses, other, calls = asyncio.run(scenario())
    assert statuses == [200, 200, 200, 429, 429] and other == 200
    assert sum(calls) == 2 + 4  # two warm-up parses, then ann's three turns and bob's one
    client = redis.Redis.from_url(redis_url)
    assert int(client.get("lim:ratelimit:rest:ann")) == 5
    assert 0 < client.ttl("lim:ratelimit:rest:ann") <= 60


def test_a_redis_outage_lets_messages_through_and_is_logged_once(caplog):
    import socket

    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    limiter = RedisRateLimiter(1, f"redis://127.0.0.1:{port}/0", socket_timeout=0.5)

    async def scenario():
        try:
            return [(await limiter.hit("rest:ann")).allowed for _ in range(3)]
        finally:
            await limiter.close()

    with caplog.at_level(logging.WARNING, logger="bot.server.limits"):
        assert asyncio.run(scenario()) == [True, True, True]
    warnings = [r for r in caplog.records if r.name == "bot.server.limits" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"127.0.0.1:{port}" in warnings[0].getMessage()


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_each_backend_counts_a_window_per_sender(backend, redis_url):
    limiter = MemoryRateLimiter(2) if backend == "memory" else RedisRateLimiter(2, redis_url, "win")

    async def scenario():
        try:
            ann = [await limiter.hit("ann") for _ in range(3)]
            bob = await limiter.hit("bob")
        finally:
            await limiter.close()
        return ann, bob

    ann, bob = asyncio.run(scenario())
    assert [verdict.allowed for verdict in ann] == [True, True, False] and bob.allowed
    assert 0 < ann[2].retry_after <= 60 and 5 <= int(ann[2].retry_after_header(5)) <= 60


def test_the_limiter_follows_the_session_store_and_zero_is_off():
    redis_sessions = load_config(None, {"sessions.store": "redis"}).sessions
    memory_sessions = load_config(None, {"sessions.store": "memory"}).sessions
    assert create_limiter(0, redis_sessions) is None
    assert isinstance(create_limiter(10, memory_sessions), MemoryRateLimiter)
    assert isinstance(create_limiter(10, None), MemoryRateLimiter)
    limiter = create_limiter(10, redis_sessions)
    assert isinstance(limiter, RedisRateLimiter) and limiter.key("rest:x") == "csbot:ratelimit:rest:x"
    asyncio.run(limiter.close())


# -- batch sizes reach the metrics -------------------------------------------------------------------------------


def test_batch_sizes_of_the_models_are_observed(loopback_server):
    from bot.batching import MicroBatcher

    class BatchedKeywords(KeywordUnderstander):
        def __init__(self) -> None:
            super().__init__()
            from test_dialogue import parse_text

            self.batcher = MicroBatcher(lambda texts: [parse_text(t) for t in texts], max_batch=8, max_wait_ms=30)

        async def parse(self, text):
            self.calls.append(text)
            return await self.batcher.submit(text)

        def observe_batches(self, callback):
            self.batcher.on_batch = callback

    async def scenario():
        bot = demo_bot(BatchedKeywords())
        await bot.start()  # its warm-up parse is not served, so not counted
        app = rest_app(bot, rate_limit_per_minute=0)
        try:
            async with loopback_server(app) as url, aiohttp.ClientSession() as http:
                results = await asyncio.gather(*(post(http, url, f"c{i}") for i in range(4)))
                assert [status for status, _, _ in results] == [200] * 4
                async with http.get(f"{url}/metrics") as response:
                    return await response.text()
        finally:
            await bot.stop()

    lines = set(asyncio.run(scenario()).splitlines())
    assert 'csbot_model_batch_size_sum{model="nlu"} 4.0' in lines
    [count] = [line for line in lines if line.startswith('csbot_model_batch_size_count{model="nlu"}')]
    assert 1 <= float(count.split()[-1]) <= 4
