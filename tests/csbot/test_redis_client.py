"""The one Redis helper: clients from URLs, passwords kept out of messages, Redis errors as the project's."""

from __future__ import annotations

import asyncio
import socket

import pytest
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from csbot.errors import ConfigError, StoreError, StoreUnavailableError
from csbot.redis_client import client_from_url, is_cluster_url, mask_url, translate


@pytest.mark.parametrize(("url", "masked"), [
    ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
    ("rediss://user:p%40ss@example.com/2", "rediss://user:***@example.com/2"),
    ("redis://user@host/0", "redis://user@host/0"),
    ("redis://localhost:6379/0", "redis://localhost:6379/0"),
    ("unix:///tmp/r.sock?db=1&password=x", "unix:///tmp/r.sock?db=1&password=***"),
    ("redis://:p@ss@h:1?password=q&db=2", "redis://:***@h:1?password=***&db=2"),
])
def test_mask_url_hides_the_password(url, masked):
    assert mask_url(url) == masked


def test_translate_a_connection_failure_names_the_masked_url_and_what_to_do():
    url = "redis://alice:s3cret@10.0.0.7:6380/1"
    error = translate(RedisConnectionError("Error 111 connecting to 10.0.0.7:6380 as alice:s3cret"),
                      "session store", url, "loading session 's'")
    assert isinstance(error, StoreUnavailableError)
    message = str(error)
    assert message.startswith("session store: Redis at redis://alice:***@10.0.0.7:6380/1 failed during loading "
                              "session 's': Error 111")
    assert "s3cret" not in message  # not even where the driver echoes it
    assert "redis-server" in message and "CSBOT_REDIS_URL" in message


@pytest.mark.parametrize("exc", [RedisTimeoutError("Timeout reading from socket"), OSError(113, "No route to host"),
                                 TimeoutError()])
def test_timeouts_and_socket_errors_are_unavailable(exc):
    error = translate(exc, "transcript stream 'k'", "redis://127.0.0.1:6379/0?password=hush", "append")
    assert isinstance(error, StoreUnavailableError)
    assert "password=***" in str(error) and "hush" not in str(error) and "'k'" in str(error)


def test_a_refused_login_is_unavailable_with_a_hint_about_the_password():
    error = translate(AuthenticationError("invalid username-password pair"), "session store",
                      "redis://bob:wrong@h:1/0", "the start-up PING")
    assert isinstance(error, StoreUnavailableError) and "user name and password" in str(error)


def test_a_refused_command_is_a_store_error_not_unavailable():
    error = translate(ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
                      "transcript stream 'k'", "redis://h:1/0", "append")
    assert isinstance(error, StoreError) and not isinstance(error, StoreUnavailableError)
    assert "WRONGTYPE" in str(error) and "refused the command" in str(error)


def test_a_url_redis_cannot_use_is_a_config_error_without_the_password():
    with pytest.raises(ConfigError, match=r"sessions\.url 'http://u:\*\*\*@example.com/'") as info:
        client_from_url("http://u:hunter2@example.com/", 1)
    assert "hunter2" not in str(info.value) and "redis://" in str(info.value)  # the schemes it takes


def test_a_client_talks_to_a_real_server_and_an_unreachable_one_translates(redis_url):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens on it once closed

    async def main():
        client = client_from_url(redis_url, 2, decode_responses=True, retries=1)
        assert await client.ping()
        await client.set("helper:k", "v")
        assert await client.get("helper:k") == "v"  # decoded
        await client.aclose()
        down_url = f"redis://default:s3cret@127.0.0.1:{port}/0"
        down = client_from_url(down_url, 0.5)
        try:
            await down.ping()
        except RedisConnectionError as exc:
            error = translate(exc, "session store", down_url, "the start-up PING")
        await down.aclose()
        return error

    error = asyncio.run(main())
    assert isinstance(error, StoreUnavailableError)
    assert f"127.0.0.1:{port}" in str(error) and "redis-server" in str(error) and "s3cret" not in str(error)


# -- Redis Cluster URLs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "masked"), [
    ("redis+cluster://:pw@h1:7000,h2:7001/", "redis+cluster://:***@h1:7000,h2:7001/"),
    ("rediss+cluster://ops:p%40ss@a.example:7000,b.example:7000", "rediss+cluster://ops:***@a.example:7000,b.example:7000"),
    ("redis+cluster://h1:7000,h2:7001", "redis+cluster://h1:7000,h2:7001"),
    ("redis://:pw@h1:7000/0?cluster=true", "redis://:***@h1:7000/0?cluster=true"),
])
def test_mask_url_hides_the_password_of_a_cluster_url(url, masked):
    assert mask_url(url) == masked


@pytest.mark.parametrize(("url", "cluster"), [
    ("redis+cluster://h1:7000", True), ("rediss+cluster://h1:7000,h2", True), ("REDIS+CLUSTER://h:1", True),
    ("redis://h:7000/0?cluster=true", True), ("rediss://h:7000/?cluster=yes", True),
    ("redis://h:7000/0?cluster=1&client_name=x", True),
    ("redis://h:7000/0", False), ("redis://h:7000/0?cluster=false", False), ("unix:///tmp/r.sock", False),
    ("rediss://h:6380/1", False), ("not a url", False),
])
def test_which_urls_name_a_cluster(url, cluster):
    assert is_cluster_url(url) is cluster


def test_a_cluster_url_builds_a_cluster_client_with_every_seed_node_and_the_same_timeouts():
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

    client = client_from_url("redis+cluster://ops:s3cret@10.0.0.1:7000,10.0.0.2,[::1]:7002/", 1.5, retries=2,
                             decode_responses=True)
    assert isinstance(client, RedisCluster)
    assert [(n.host, n.port) for n in client.startup_nodes] == [("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002)]
    kwargs = client.connection_kwargs
    assert (kwargs["username"], kwargs["password"], kwargs["decode_responses"]) == ("ops", "s3cret", True)
    assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == 1.5
    assert client.retry.get_retries() == 2 and kwargs["connection_class"].__name__ == "Connection"  # no TLS
    tls = client_from_url("rediss+cluster://h:7000?ssl_cert_reqs=none&max_connections=7", 1)
    assert tls.connection_kwargs["connection_class"].__name__ == "SSLConnection"
    assert tls.connection_kwargs["ssl_cert_reqs"] == "none" and tls.startup_nodes[0].max_connections == 7
    seed = client_from_url("redis://h:7000/0?cluster=true", 1)
    assert isinstance(seed, RedisCluster) and [(n.host, n.port) for n in seed.startup_nodes] == [("h", 7000)]
    assert type(client_from_url("redis://h:7000/0?cluster=false", 1)) is Redis
    assert type(client_from_url("redis://h:7000/0", 1)) is Redis


@pytest.mark.parametrize(("url", "why"), [
    ("redis+cluster://:pw@h1:7000/2", "only database 0"),
    ("redis+cluster://:pw@h1:7000,,h2:7001", "is not host"),
    ("redis+cluster://:pw@h1:70000", "out of range"),
    ("redis+cluster://:pw@h1:7000,u:pw@h2:7001", "once, before the first host"),
    ("redis+cluster://:pw@h1:abc", "is not host"),
    ("redis+cluster://:pw@h1:7000?socket_timeout=soon", "socket_timeout"),
    ("redis+cluster://:pw@h1:7000?no_such_option=1", "no_such_option"),
    ("redis://:pw@h1:7000/3?cluster=true", "only database 0"),
])
def test_a_bad_cluster_url_is_a_config_error_naming_the_setting_without_the_password(url, why):
    with pytest.raises(ConfigError) as info:
        client_from_url(url, 1, setting="channels.slack.redis_url")
    message = str(info.value)
    assert message.startswith("channels.slack.redis_url ") and why in message, message
    assert ":pw@" not in message and ":***@" in message


def test_cluster_errors_translate_by_whether_the_cluster_can_serve():
    from redis.exceptions import (
        ClusterCrossSlotError,
        ClusterDownError,
        ClusterError,
        MovedError,
        RedisClusterException,
        SlotNotCoveredError,
        TryAgainError,
    )

    url = "redis+cluster://ops:s3cret@h1:7000,h2:7001/"
    for exc in (ClusterDownError("The cluster is down"), TryAgainError("resharding"), ClusterError("TTL exhausted"),
                SlotNotCoveredError("slot 9 not covered"),
                RedisClusterException("Redis Cluster cannot be connected. ... ops:s3cret@h1")):
        error = translate(exc, "session store", url, "locking session 's'")
        assert isinstance(error, StoreUnavailableError), exc
        assert "Redis Cluster up" in str(error) and "s3cret" not in str(error) and "ops:***@h1:7000,h2:7001" in str(error)
    moved = translate(MovedError("3999 127.0.0.1:7001"), "session store", "redis://h1:7000/0", "saving")
    assert not isinstance(moved, StoreUnavailableError) and isinstance(moved, StoreError)
    assert "MOVED 3999 127.0.0.1:7001" in str(moved) and "redis+cluster://" in str(moved)
    crossed = translate(ClusterCrossSlotError(), "session store", url, "saving")
    assert not isinstance(crossed, StoreUnavailableError) and "hash slot" in str(crossed)


def test_a_cluster_client_talks_to_a_real_cluster_through_either_url(redis_cluster, redis_cluster_url):
    async def main():
        seen = []
        for url in (redis_cluster_url, redis_cluster.seed_url):
            client = client_from_url(url, 2, decode_responses=True, retries=1)
            assert await client.ping()
            for n in range(20):
                await client.set(f"helper:{n}", str(n))
            seen.append([await client.get(f"helper:{n}") for n in range(20)])
            await client.aclose()
        return seen

    assert asyncio.run(main()) == [[str(n) for n in range(20)]] * 2
    assert sum(1 for node in redis_cluster.nodes if int(node.command("DBSIZE").strip())) >= 2
