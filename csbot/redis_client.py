"""The one Redis helper: a client from a URL, the URL fit for messages, and Redis errors as the project's.

Every part that talks to Redis (the session store, the transcript stream) builds its client with
:func:`client_from_url`, names the server with :func:`mask_url` and turns a redis-py or socket error into
a :class:`~csbot.errors.StoreError` with :func:`translate`, at the boundary (``raise translate(...) from
exc``). redis-py is imported only when a client is built or an error translated, so importing this
module stays light.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import unquote

from csbot.errors import ConfigError, StoreError, StoreUnavailableError

if TYPE_CHECKING:
    import redis.asyncio as aioredis

#: Where the Redis URL is set, named in hints (one URL serves sessions and the transcript stream).
URL_SETTINGS = "sessions.url or CSBOT_REDIS_URL"

_PASSWORD_QUERY = re.compile(r"(?i)([?&]password=)([^&#]*)")


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (in the user info and in a ``password=`` query)."""
    match = re.match(r"^([^:/?#]+://)([^/?#]*)(.*)$", url)
    if match is None:
        return _PASSWORD_QUERY.sub(r"\1***", url)
    scheme, authority, tail = match.groups()
    if "@" in authority:
        userinfo, host = authority.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        authority = f"{userinfo}@{host}"
    return scheme + authority + _PASSWORD_QUERY.sub(r"\1***", tail)


def _secrets(url: str) -> list[str]:
    """The passwords a URL holds (as written and decoded), longest first, to scrub from driver messages."""
    found: list[str] = []
    match = re.match(r"^[^:/?#]+://([^/?#]*)", url)
    if match is not None and "@" in match.group(1):
        userinfo = match.group(1).rsplit("@", 1)[0]
        if ":" in userinfo:
            found.append(userinfo.split(":", 1)[1])
    found += [m.group(2) for m in _PASSWORD_QUERY.finditer(url)]
    found += [unquote(s) for s in found]
    return sorted({s for s in found if s}, key=len, reverse=True)


def _scrub(text: str, url: str) -> str:
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text


def client_from_url(
    url: str,
    socket_timeout: float,
    *,
    decode_responses: bool = False,
    retries: int | None = None,
    setting: str = "sessions.url",
) -> aioredis.Redis:
    """An asyncio Redis client for ``url``; connecting and every command time out after ``socket_timeout``.

    ``retries``: how often a command that failed on its connection is retried, with a short jittered
    backoff (``None``: redis-py's default). The client connects lazily; a URL redis-py cannot use is a
    :class:`ConfigError` naming ``setting`` and the masked URL.
    """
    import redis.asyncio as aioredis

    options: dict[str, object] = {}
    if retries is not None:
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialWithJitterBackoff

        options["retry"] = Retry(ExponentialWithJitterBackoff(cap=0.1, base=0.01), retries=retries)
    try:
        return aioredis.Redis.from_url(
            url,
            decode_responses=decode_responses,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            **options,  # type: ignore[arg-type]
        )
    except ValueError as exc:
        raise ConfigError(f"{setting} {mask_url(url)!r} is not a Redis URL: {_scrub(str(exc), url)}") from exc


def translate(exc: BaseException, where: str, url: str, doing: str) -> StoreError:
    """A redis-py or socket error as the project's, to raise ``from exc``; the message never holds a password.

    Connection failures and timeouts (the server is down, unreachable, silent, or refuses the login)
    become :class:`StoreUnavailableError`, anything else (the server refused the command) :class:`StoreError`.
    The message reads ``{where}: Redis at {masked url} failed during {doing}: {reason} ({hint})``.
    """
    from redis.exceptions import AuthenticationError, NoPermissionError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    unavailable = isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError))
    if isinstance(exc, (AuthenticationError, NoPermissionError)):
        hint = f"check the user name and password in {URL_SETTINGS}"
    elif unavailable:
        hint = f"is redis-server running and reachable there? Set {URL_SETTINGS}"
    else:
        hint = "the server refused the command"
    reason = _scrub(str(exc) or type(exc).__name__, url)
    cls = StoreUnavailableError if unavailable else StoreError
    return cls(f"{where}: Redis at {mask_url(url)} failed during {doing}: {reason} ({hint})")


__all__ = ["URL_SETTINGS", "client_from_url", "mask_url", "translate"]
