"""The one Redis helper: a client from a URL, the URL fit for messages, and Redis errors as the project's.

Every part that talks to Redis (the session store, the transcript stream, the delivery dedupe) builds its
client with :func:`client_from_url`, names the server with :func:`mask_url` and turns a redis-py or socket
error into a :class:`~csbot.errors.StoreError` with :func:`translate`, at the boundary (``raise
translate(...) from exc``; catch :func:`redis_errors`). redis-py is imported only when a client is built or
an error translated, so importing this module stays light.

URLs:

- one server: ``redis://[[user]:password@]host[:port][/db][?option=value...]`` (``rediss://`` for TLS,
  ``unix:///path/to.sock?db=N``), as redis-py reads them;
- a Redis Cluster: ``redis+cluster://[[user]:password@]host1[:port1][,host2[:port2]...][/][?option=value...]``
  (``rediss+cluster://`` for TLS): the hosts are seed nodes, any reachable one is enough and the client
  discovers the rest, so listing two or three survives one being down. The user and password, written
  once before the first host, hold for every node; the port defaults to 6379, an IPv6 host is written in
  brackets (``[::1]:7000``). A cluster has only database 0, so the path is empty, ``/`` or ``/0``.
  ``redis://host:port/?cluster=true`` (or ``rediss://``) is the same as one seed node.

Options in the query are redis-py's (``?ssl_cert_reqs=none``, ``?client_name=...``, on a cluster also
``?max_connections=N`` per node); ``cluster`` is ours.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlencode

from csbot.errors import ConfigError, StoreError, StoreUnavailableError

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from redis.asyncio.cluster import RedisCluster

#: Where the Redis URL is set, named in hints (one URL serves sessions and the transcript stream).
URL_SETTINGS = "sessions.url or CSBOT_REDIS_URL"

#: The schemes of a Redis Cluster URL (the second with TLS).
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")

#: Connections per cluster node at most, unless the URL sets ``?max_connections=N``.
CLUSTER_MAX_CONNECTIONS = 65536

_PASSWORD_QUERY = re.compile(r"(?i)([?&]password=)([^&#]*)")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (in the user info and in a ``password=`` query).

    A cluster URL's user info is the part before the last ``@`` of its host list, so
    ``redis+cluster://u:pw@h1:7000,h2:7001`` becomes ``redis+cluster://u:***@h1:7000,h2:7001``.
    """
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


def _split(url: str) -> tuple[str, str, str, list[tuple[str, str]]] | None:
    """``(scheme, authority, path, query pairs)`` of ``scheme://authority/path?query``, or ``None``."""
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)([^?#]*)(?:\?([^#]*))?$", url)
    if match is None:
        return None
    scheme, authority, path, query = match.groups()
    return scheme.lower(), authority, path, parse_qsl(query or "", keep_blank_values=True)


def is_cluster_url(url: str) -> bool:
    """True for a Redis Cluster URL: ``redis+cluster://``, ``rediss+cluster://`` or ``?cluster=true``."""
    parts = _split(url)
    if parts is None:
        return False
    scheme, _, _, query = parts
    if scheme in CLUSTER_SCHEMES:
        return True
    flags = [value.strip().lower() for name, value in query if name == "cluster"]
    return scheme in ("redis", "rediss") and bool(flags) and flags[-1] in _TRUE


def _cluster_nodes(url: str, setting: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The seed nodes of a cluster URL and the client options it sets; a :class:`ConfigError` if it is bad."""
    from redis.asyncio.connection import SSLConnection, parse_url

    def bad(reason: str) -> ConfigError:
        return ConfigError(f"{setting} {mask_url(url)!r} is not a Redis Cluster URL: {reason} (write "
                           "redis+cluster://[user:password@]host1:port1,host2:port2 or rediss+cluster:// for TLS)")

    parts = _split(url)
    if parts is None:
        raise bad("it does not read scheme://hosts")
    scheme, authority, path, query = parts
    userinfo, _, hosts = authority.rpartition("@")
    if "@" in userinfo and "," in userinfo:  # u:pw@h1,u:pw@h2 would read as one long password
        raise bad("write user:password@ once, before the first host (percent-encode '@' and ',' in a password)")
    nodes: list[tuple[str, int]] = []
    for host in hosts.split(","):
        match = re.match(r"^(?:\[([^\]]+)\]|([^:\[\]@]+))(?::(\d{1,5}))?$", host.strip())
        if match is None:
            raise bad(f"{host.strip()!r} is not host[:port] (write user:password@ once, before the first host)")
        port = int(match.group(3) or 6379)
        if not 0 < port < 65536:
            raise bad(f"port {port} is out of range")
        nodes.append((match.group(1) or match.group(2), port))
    if path not in ("", "/", "/0"):
        raise bad(f"a cluster has only database 0, not {path!r}")
    options = [(name, value) for name, value in query if name != "cluster"]
    tls = scheme.startswith("rediss")
    single = f"{'rediss' if tls else 'redis'}://{userinfo + '@' if userinfo else ''}{hosts.split(',')[0]}/"
    try:
        kwargs: dict[str, Any] = dict(parse_url(single + ("?" + urlencode(options) if options else "")))
    except ValueError as exc:
        raise bad(_scrub(str(exc), url)) from exc
    for name in ("host", "port", "path"):
        kwargs.pop(name, None)
    if kwargs.pop("connection_class", None) is SSLConnection:
        kwargs["ssl"] = True
    if kwargs.pop("db", 0) not in (0, None):
        raise bad("a cluster has only database 0")
    return nodes, kwargs


def client_from_url(
    url: str,
    socket_timeout: float,
    *,
    decode_responses: bool = False,
    retries: int | None = None,
    setting: str = "sessions.url",
) -> aioredis.Redis | RedisCluster:
    """An asyncio client for ``url``: a :class:`~redis.asyncio.cluster.RedisCluster` for a cluster URL (see the
    module docstring), a plain :class:`~redis.asyncio.Redis` otherwise. Connecting and every command time
    out after ``socket_timeout``.

    ``retries``: how often a command that failed on its connection is retried, with a short jittered
    backoff (``None``: redis-py's default); on a cluster each retry first refreshes the slot map. The client
    connects lazily; a URL redis-py cannot use is a :class:`ConfigError` naming ``setting`` and the masked URL.
    """
    import redis.asyncio as aioredis
    from redis.exceptions import RedisClusterException

    options: dict[str, Any] = {}
    if retries is not None:
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialWithJitterBackoff

        options["retry"] = Retry(ExponentialWithJitterBackoff(cap=0.1, base=0.01), retries=retries)
    options.update(decode_responses=decode_responses, socket_timeout=socket_timeout,
                   socket_connect_timeout=socket_timeout)
    if is_cluster_url(url):
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        nodes, url_options = _cluster_nodes(url, setting)
        # redis-py caps a cluster node at 100 connections and then fails the command ("Too many connections")
        # instead of waiting; like the single-server client, open one per concurrent command unless the URL
        # sets ?max_connections=N. Options in the URL win, as redis-py's from_url has it.
        options["max_connections"] = CLUSTER_MAX_CONNECTIONS
        try:
            return RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in nodes],
                                **{**options, **url_options})
        except (TypeError, ValueError, RedisClusterException) as exc:
            raise ConfigError(f"{setting} {mask_url(url)!r}: a Redis Cluster client cannot be built from it: "
                              f"{_scrub(str(exc), url)}") from exc
    try:
        return aioredis.Redis.from_url(url, **options)
    except ValueError as exc:
        raise ConfigError(f"{setting} {mask_url(url)!r} is not a Redis URL: {_scrub(str(exc), url)} "
                          "(or redis+cluster://host1:port1,host2:port2 for a cluster)") from exc


def redis_errors() -> tuple[type[BaseException], ...]:
    """What a Redis call can raise that :func:`translate` handles: redis-py's errors (the cluster client's
    too, which do not all derive from ``RedisError``) and socket errors."""
    from redis.exceptions import RedisClusterException, RedisError

    return (RedisError, RedisClusterException, OSError)


def translate(exc: BaseException, where: str, url: str, doing: str) -> StoreError:
    """A redis-py or socket error as the project's, to raise ``from exc``; the message never holds a password.

    Connection failures and timeouts (the server is down, unreachable, silent, or refuses the login) and a
    cluster that cannot serve (no seed node reachable, a slot not served, ``CLUSTERDOWN``, ``TRYAGAIN`` or
    redirections that never settle) become :class:`StoreUnavailableError`; anything else (the server
    refused the command, a single-server URL pointed at a cluster node that answers ``MOVED``) a
    :class:`StoreError`. The message reads ``{where}: Redis at {masked url} failed during {doing}: {reason}
    ({hint})``.
    """
    from redis.exceptions import (
        AskError,
        AuthenticationError,
        ClusterCrossSlotError,
        ClusterError,
        CrossSlotTransactionError,
        MovedError,
        NoPermissionError,
        RedisClusterException,
        TryAgainError,
    )
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    cluster_down = isinstance(exc, (ClusterError, TryAgainError, RedisClusterException)) and not isinstance(
        exc, CrossSlotTransactionError)
    unavailable = cluster_down or isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError))
    if isinstance(exc, (AuthenticationError, NoPermissionError)):
        hint = f"check the user name and password in {URL_SETTINGS}"
    elif cluster_down:
        hint = f"is the Redis Cluster up, with every hash slot served, and a node of it reachable? Set {URL_SETTINGS}"
    elif unavailable:
        hint = f"is redis-server running and reachable there? Set {URL_SETTINGS}"
    elif isinstance(exc, AskError):  # MovedError too: a cluster node answered a single-server client
        hint = f"that server is a Redis Cluster node: write redis+cluster://host:port,... in {URL_SETTINGS}"
    elif isinstance(exc, (ClusterCrossSlotError, CrossSlotTransactionError)):
        hint = "the keys of one command must share a hash slot"
    else:
        hint = "the server refused the command"
    reason = _scrub(str(exc) or type(exc).__name__, url)
    if isinstance(exc, AskError):  # redis-py drops the word that says what the numbers are
        reason = f"{'MOVED' if isinstance(exc, MovedError) else 'ASK'} {reason}"
    cls = StoreUnavailableError if unavailable else StoreError
    return cls(f"{where}: Redis at {mask_url(url)} failed during {doing}: {reason} ({hint})")


__all__ = ["CLUSTER_SCHEMES", "URL_SETTINGS", "client_from_url", "is_cluster_url", "mask_url", "redis_errors",
           "translate"]
