"""The conversations handed over to a person and not yet given back: what the agent API lists.

A :class:`HandoffList` holds one :class:`HandoffInfo` per handed-over conversation: ``add`` when the bot
hands a conversation over, ``remove`` when an agent releases it, ``list`` newest first. Two backends:

- :class:`MemoryHandoffList`, in the process (with the memory session store);
- :class:`RedisHandoffList`, one hash ``{namespace}:handoffs`` (session id -> the info as JSON) on the session
  store's Redis, so every worker sees every hand-over. One key, so it lives in one hash slot of a cluster.

:func:`create_handoff_list` picks the backend that matches ``sessions.store``.
"""

from __future__ import annotations

import abc
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from csbot.errors import StoreError
from csbot.redis_client import redis_errors

if TYPE_CHECKING:
    from bot.sessions.config import SessionsConfig

log = logging.getLogger(__name__)


@dataclass
class HandoffInfo:
    """One handed-over conversation: where it came from, why and when, and the customer's last message."""

    session_id: str
    channel: str | None = None
    recipient_id: str | None = None
    reason: str = ""
    handed_over_at: float = field(default_factory=time.time)
    last_message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HandoffInfo:
        """Inverse of :meth:`to_dict`; unknown keys are ignored (written by a newer version)."""
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


class HandoffList(abc.ABC):
    """The handed-over conversations; ``start`` before use, ``close`` after."""

    async def start(self) -> None:
        """Connect (a backend that needs to); an error here is raised."""

    async def close(self) -> None:
        """Release connections."""

    @abc.abstractmethod
    async def add(self, session_id: str, info: HandoffInfo) -> None:
        """Record ``session_id`` as handed over (replacing an older record of it)."""

    @abc.abstractmethod
    async def remove(self, session_id: str) -> bool:
        """Forget ``session_id``; whether it was listed."""

    @abc.abstractmethod
    async def list(self) -> list[HandoffInfo]:
        """Every handed-over conversation, the most recently handed over first."""


def _newest_first(infos: list[HandoffInfo]) -> list[HandoffInfo]:
    return sorted(infos, key=lambda info: info.handed_over_at, reverse=True)


class MemoryHandoffList(HandoffList):
    """The list in this process's memory (one worker; the memory session store)."""

    def __init__(self) -> None:
        self._infos: dict[str, HandoffInfo] = {}

    async def add(self, session_id: str, info: HandoffInfo) -> None:
        self._infos[session_id] = info

    async def remove(self, session_id: str) -> bool:
        return self._infos.pop(session_id, None) is not None

    async def list(self) -> list[HandoffInfo]:
        return _newest_first(list(self._infos.values()))


class RedisHandoffList(HandoffList):
    """The list as one Redis hash, ``{namespace}:handoffs``, shared by every worker on the same Redis.

    Redis failures are raised as :class:`~csbot.errors.StoreError` (``StoreUnavailableError`` when the server
    does not answer), naming the URL without its password; an entry that is not valid JSON is skipped.
    """

    def __init__(self, url: str, namespace: str = "csbot", *, timeout: float = 2.0) -> None:
        from csbot.redis_client import client_from_url, mask_url

        self.url, self.key = url, f"{namespace}:handoffs"
        self.where = mask_url(url)
        self._redis = client_from_url(url, timeout)

    def __repr__(self) -> str:
        return f"RedisHandoffList({self.where!r}, key={self.key!r})"

    def _error(self, exc: BaseException, doing: str) -> StoreError:
        from csbot.redis_client import translate

        return translate(exc, f"handed-over list {self.key!r}", self.url, doing)

    async def start(self) -> None:
        """Check the server answers."""
        try:
            await self._redis.ping()
        except redis_errors() as exc:
            raise self._error(exc, "the start-up PING") from exc

    async def close(self) -> None:
        await self._redis.aclose()

    async def add(self, session_id: str, info: HandoffInfo) -> None:
        try:
            await self._redis.hset(self.key, session_id, json.dumps(info.to_dict(), ensure_ascii=False))
        except redis_errors() as exc:
            raise self._error(exc, "add") from exc

    async def remove(self, session_id: str) -> bool:
        try:
            return bool(await self._redis.hdel(self.key, session_id))
        except redis_errors() as exc:
            raise self._error(exc, "remove") from exc

    async def list(self) -> list[HandoffInfo]:
        try:
            entries = await self._redis.hgetall(self.key)
        except redis_errors() as exc:
            raise self._error(exc, "list") from exc
        infos: list[HandoffInfo] = []
        for session_id, raw in entries.items():
            try:
                infos.append(HandoffInfo.from_dict(json.loads(raw)))
            except (ValueError, TypeError) as exc:
                log.warning("%s: the entry of %r is not a hand-over record (skipped): %s", self.key, session_id, exc)
        return _newest_first(infos)


def create_handoff_list(config: SessionsConfig) -> HandoffList:
    """The list beside the configured session store: Redis (same URL and namespace) with the Redis store,
    memory otherwise. A custom store gets the memory list, with a warning that it is per process."""
    if config.store == "redis":
        return RedisHandoffList(config.url, config.namespace, timeout=config.socket_timeout_seconds)
    if config.store != "memory":
        log.warning("sessions.store %r: the list of handed-over conversations is kept in memory, per process "
                    "(the agent API of one worker sees only that worker's hand-overs)", config.store)
    return MemoryHandoffList()


__all__ = ["HandoffInfo", "HandoffList", "MemoryHandoffList", "RedisHandoffList", "create_handoff_list"]
