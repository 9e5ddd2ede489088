"""An in-process session store: the REPL's default and the tests' reference backend.

State is kept as JSON strings, so a loaded state is a copy and changing it without ``save`` changes
nothing, exactly as with Redis. It is not shared between processes: ``csbot serve`` with several
workers needs the Redis store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.sessions.base import SessionStore, decode_state, encode_state
from bot.sessions.state import SessionState
from csbot.errors import ConfigError, LockTimeoutError

if TYPE_CHECKING:
    from typing import Self

    from bot.sessions.config import SessionsConfig

logger = logging.getLogger(__name__)

#: Expired sessions that are never loaded again are swept out at most this often (seconds).
SWEEP_INTERVAL = 60.0


@dataclass
class _SessionLock:
    """A per-session lock and how many turns hold or wait for it (dropped from the table at zero)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class MemorySessionStore(SessionStore):
    """Sessions in a dict of JSON strings with a time to live; per-session ``asyncio.Lock``s."""

    def __init__(self, ttl_seconds: float = 86400, lock_timeout_seconds: float = 10) -> None:
        if ttl_seconds <= 0:
            raise ConfigError(f"sessions.ttl_seconds must be positive, got {ttl_seconds}")
        if lock_timeout_seconds <= 0:
            raise ConfigError(f"sessions.lock_timeout_seconds must be positive, got {lock_timeout_seconds}")
        self.ttl_seconds = ttl_seconds
        self.lock_timeout_seconds = lock_timeout_seconds
        self._data: dict[str, tuple[str, float]] = {}  # session id -> (JSON, monotonic expiry time)
        self._locks: dict[str, _SessionLock] = {}
        self._last_sweep = time.monotonic()

    @classmethod
    def from_config(cls, config: SessionsConfig) -> Self:
        return cls(ttl_seconds=config.ttl_seconds, lock_timeout_seconds=config.lock_timeout_seconds)

    async def load(self, session_id: str) -> SessionState:
        entry = self._data.get(session_id)
        if entry is None:
            return SessionState(session_id)
        raw, expires = entry
        if time.monotonic() >= expires:
            del self._data[session_id]
            return SessionState(session_id)
        return decode_state(session_id, raw, f"memory session {session_id!r}")

    async def save(self, state: SessionState) -> None:
        now = time.monotonic()
        self._data[state.session_id] = (encode_state(state), now + self.ttl_seconds)
        if now - self._last_sweep >= min(SWEEP_INTERVAL, self.ttl_seconds):
            self._sweep(now)

    async def delete(self, session_id: str) -> None:
        self._data.pop(session_id, None)

    @asynccontextmanager
    async def lock(self, session_id: str) -> AsyncIterator[None]:
        """Hold the session's lock for one turn; waiting longer than the lock timeout raises."""
        entry = self._locks.get(session_id)
        if entry is None:
            entry = self._locks[session_id] = _SessionLock()
        entry.users += 1
        try:
            try:
                await asyncio.wait_for(entry.lock.acquire(), self.lock_timeout_seconds)
            except TimeoutError as exc:
                raise LockTimeoutError(
                    f"session {session_id!r} stayed locked by another turn for more than "
                    f"{self.lock_timeout_seconds:g} s (sessions.lock_timeout_seconds)"
                ) from exc
            try:
                yield
            finally:
                entry.lock.release()
        finally:
            entry.users -= 1
            if entry.users == 0 and self._locks.get(session_id) is entry:
                del self._locks[session_id]

    def _sweep(self, now: float) -> None:
        """Drop expired sessions so a long-running process does not grow without bound."""
        expired = [sid for sid, (_, expires) in self._data.items() if now >= expires]
        for sid in expired:
            del self._data[sid]
        self._last_sweep = now
        if expired:
            logger.debug("memory session store: dropped %d expired sessions", len(expired))
