"""The one Redis helper: clients from URLs, passwords kept out of messages, Redis errors as the project's."""

from __future__ import annotations

import asyncio
import socket

import pytest
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from csbot.errors import ConfigError, StoreError, StoreUnavailableError
from csbot.redis_client import client_from_url, mask_url, translate


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
