"""Per-sender rate limiting of incoming messages (``server.rate_limit_per_minute``; 0: off).

A :class:`RateLimiter` counts each sender's messages in fixed one-minute windows and says, for each new
message, whether it may go on or how long until the sender's window ends. :class:`MemoryRateLimiter` counts
in this process; :class:`RedisRateLimiter` counts in Redis under ``{namespace}:ratelimit:{sender}`` (one key
per sender, ``INCR`` and its expiry set together in one Lua script, so the limit holds across workers and the
key goes away with its window). A Redis that does not answer never costs a customer a turn: the message is
let through and the outage logged once (again after Redis has answered in between).

:func:`create_limiter` picks the Redis backend when sessions live in Redis, memory otherwise, and none when
the limit is 0. The sender is the message's ``session_id`` (a channel's conversation).
"""

from __future__ import annotations

import abc
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.server.errors import RequestError
from csbot.redis_client import client_from_url, mask_url, translate

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from bot.config import ServerConfig
    from bot.messages import Message
    from bot.server.metrics import ServerMetrics
    from bot.sessions.config import SessionsConfig

log = logging.getLogger(__name__)

#: The length of a counting window (seconds): the limit is per minute.
WINDOW_SECONDS = 60.0

#: KEYS[1] the sender's counter, ARGV[1] the window in ms; answers {count in this window, ms until it ends}.
HIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if count == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


@dataclass(frozen=True)
class Verdict:
    """Whether a message may go on; when not, how many seconds until the sender's window ends."""

    allowed: bool
    retry_after: float = 0.0

    def retry_after_header(self, at_least: int = 1) -> str:
        """The ``Retry-After`` value: whole seconds, never below ``at_least``."""
        return str(max(at_least, math.ceil(self.retry_after)))


ALLOWED = Verdict(True)


class RateLimiter(abc.ABC):
    """At most ``limit`` messages per sender per window; ``hit`` counts one and answers the verdict."""

    def __init__(self, limit: int, window_seconds: float = WINDOW_SECONDS) -> None:
        if limit < 1:
            raise ValueError(f"a rate limit must be at least 1 message per window, got {limit}")
        self.limit, self.window = limit, window_seconds

    @abc.abstractmethod
    async def hit(self, sender: str) -> Verdict:
        """Count one message of ``sender``; allowed while its count in the current window is within the limit."""

    async def close(self) -> None:
        """Release what the limiter holds (a Redis connection)."""


class MemoryRateLimiter(RateLimiter):
    """Windows counted in this process (one worker, or sessions in memory)."""

    #: Expired windows are swept when this many senders are tracked.
    sweep_at = 10_000

    def __init__(self, limit: int, window_seconds: float = WINDOW_SECONDS) -> None:
        super().__init__(limit, window_seconds)
        self._windows: dict[str, tuple[int, float]] = {}  # sender -> (count, window end on the monotonic clock)

    async def hit(self, sender: str) -> Verdict:
        now = time.monotonic()
        count, end = self._windows.get(sender, (0, 0.0))
        if end <= now:
            count, end = 0, now + self.window
            if len(self._windows) >= self.sweep_at:
                self._windows = {key: value for key, value in self._windows.items() if value[1] > now}
        count += 1
        self._windows[sender] = (count, end)
        return ALLOWED if count <= self.limit else Verdict(False, end - now)


class RedisRateLimiter(RateLimiter):
    """Windows counted in Redis, shared by every worker on the same URL and namespace."""

    def __init__(self, limit: int, url: str, namespace: str = "csbot", socket_timeout: float = 2.0,
                 window_seconds: float = WINDOW_SECONDS) -> None:
        super().__init__(limit, window_seconds)
        self.url, self.namespace = url, namespace
        self._redis: aioredis.Redis = client_from_url(url, socket_timeout, retries=0)
        self._script = self._redis.register_script(HIT_SCRIPT)
        self._window_ms = max(1, round(window_seconds * 1000))
        self._down = False

    @classmethod
    def from_config(cls, limit: int, config: SessionsConfig) -> RedisRateLimiter:
        return cls(limit, config.url, config.namespace, config.socket_timeout_seconds)

    def key(self, sender: str) -> str:
        return f"{self.namespace}:ratelimit:{sender}"

    async def hit(self, sender: str) -> Verdict:
        try:
            count, ttl_ms = await self._script(keys=[self.key(sender)], args=[self._window_ms])
        except Exception as exc:  # noqa: BLE001 - translated; a limiter outage must not fail the turn
            error = translate(exc, "rate limit", self.url, f"counting a message of {sender!r}")
            if not self._down:
                log.warning("%s; messages are let through unlimited until Redis answers again", error)
            self._down = True
            return ALLOWED
        if self._down:
            log.info("rate limit: Redis at %s answers again; limiting resumes", mask_url(self.url))
            self._down = False
        return ALLOWED if int(count) <= self.limit else Verdict(False, int(ttl_ms) / 1000)

    async def close(self) -> None:
        try:
            await self._redis.aclose()
        except Exception as exc:  # noqa: BLE001 - closing is best effort
            log.debug("rate limit: closing the Redis client: %s", exc)


def create_limiter(limit: int, sessions: SessionsConfig | None) -> RateLimiter | None:
    """The limiter for ``limit`` messages per minute: in Redis when sessions are, in memory otherwise; none at 0."""
    if limit <= 0:
        return None
    if sessions is not None and sessions.store == "redis":
        return RedisRateLimiter.from_config(limit, sessions)
    return MemoryRateLimiter(limit)



class TurnGate:
    """What stands between a channel and the dialogue manager: the bounded queue, then the rate limit.

    At most ``server.max_queued_turns`` turns are in flight in this worker (answered or waiting for a model
    call); one more is refused with a 503 and ``Retry-After: server.retry_after_seconds``. A sender over
    ``server.rate_limit_per_minute`` is refused with a 429 whose ``Retry-After`` is the rest of its window
    (at least ``retry_after_seconds``). Both are JSON errors and neither reaches the dialogue manager.
    """

    def __init__(self, config: ServerConfig, limiter: RateLimiter | None, metrics: ServerMetrics) -> None:
        self.max_turns, self.retry_after = config.max_queued_turns, config.retry_after_seconds
        self.limiter, self.metrics = limiter, metrics
        self.in_flight = 0

    @asynccontextmanager
    async def admit(self, message: Message) -> AsyncIterator[None]:
        """Hold one place in the queue for the turn of ``message`` while the block runs; RequestError if refused."""
        if self.in_flight >= self.max_turns:
            self.metrics.reject(message.channel, "overloaded")
            raise RequestError(503, f"the server is busy ({self.in_flight} turns in flight); retry in "
                               f"{self.retry_after} s", headers={"Retry-After": str(self.retry_after)})
        self.in_flight += 1
        self.metrics.turns_in_flight.inc()
        try:
            if self.limiter is not None:
                verdict = await self.limiter.hit(message.session_id)
                if not verdict.allowed:
                    self.metrics.reject(message.channel, "rate_limited")
                    retry = verdict.retry_after_header(self.retry_after)
                    raise RequestError(429, f"too many messages: at most {self.limiter.limit} a minute; retry in "
                                       f"{retry} s", headers={"Retry-After": retry})
            yield
        finally:
            self.in_flight -= 1
            self.metrics.turns_in_flight.dec()

    async def close(self) -> None:
        if self.limiter is not None:
            await self.limiter.close()


__all__ = ["HIT_SCRIPT", "MemoryRateLimiter", "RateLimiter", "RedisRateLimiter", "TurnGate", "Verdict",
           "WINDOW_SECONDS", "create_limiter"]
