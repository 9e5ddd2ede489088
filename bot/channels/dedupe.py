"""Remembering handled deliveries for a while, so a platform's retried delivery is handled once.

Slack and Telegram both redeliver what they think was not received. A channel claims each delivery's id in an
:class:`EventDedupe` before handling it: the first claim within the TTL wins, later ones are acknowledged and
dropped. :class:`MemoryEventDedupe` holds for one process; :class:`RedisEventDedupe` (``SET key NX EX``) holds
across workers.
"""

from __future__ import annotations

import abc
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from csbot.redis_client import client_from_url, translate

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from redis.asyncio.cluster import RedisCluster


class EventDedupe(abc.ABC):
    """Remembers handled delivery ids for a while, so a retried delivery is handled once."""

    @abc.abstractmethod
    async def claim(self, key: str) -> bool:
        """True for the first claim of ``key`` within the TTL, False afterwards (atomically)."""

    async def start(self) -> None:
        """Connect (a bad URL or an unreachable server fails here)."""

    async def close(self) -> None:
        """Release connections."""


class MemoryEventDedupe(EventDedupe):
    """Ids in this process, each forgotten ``ttl_seconds`` after its claim; at most ``max_size`` of them (the
    oldest forgotten first), so a flood of ids cannot grow it without bound."""

    def __init__(self, ttl_seconds: float, max_size: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds, self.max_size, self.clock = ttl_seconds, max_size, clock
        self._expiry: OrderedDict[str, float] = OrderedDict()

    async def claim(self, key: str) -> bool:
        now = self.clock()
        while self._expiry and (next(iter(self._expiry.values())) <= now or len(self._expiry) >= self.max_size):
            self._expiry.popitem(last=False)
        if key in self._expiry:
            return False
        self._expiry[key] = now + self.ttl_seconds
        return True


class RedisEventDedupe(EventDedupe):
    """Ids in Redis (``SET csbot:{channel}:event:{id} 1 NX EX ttl``), shared by every worker of ``channel``.

    ``url`` may name a Redis Cluster (``redis+cluster://...``, see :mod:`csbot.redis_client`): each claim is
    one key, so the ids spread over the cluster's nodes."""

    def __init__(self, url: str, ttl_seconds: int, *, channel: str, socket_timeout: float = 2.0) -> None:
        self.url, self.ttl_seconds = url, ttl_seconds
        self.prefix, self.where = f"csbot:{channel}:event:", f"{channel} event dedupe"
        self.client: aioredis.Redis | RedisCluster = client_from_url(url, socket_timeout, setting=f"channels.{channel}.redis_url")

    async def start(self) -> None:
        try:
            await self.client.ping()
        except Exception as exc:  # every redis-py or socket error, translated
            raise translate(exc, self.where, self.url, "PING") from exc

    async def claim(self, key: str) -> bool:
        try:
            return bool(await self.client.set(self.prefix + key, b"1", nx=True, ex=self.ttl_seconds))
        except Exception as exc:  # every redis-py or socket error, translated
            raise translate(exc, self.where, self.url, "SET NX") from exc

    async def close(self) -> None:
        await self.client.aclose()


__all__ = ["EventDedupe", "MemoryEventDedupe", "RedisEventDedupe"]
