"""The Redis session store: what ``csbot serve`` uses so that several workers share conversations.

Keys (``namespace`` keeps several bots apart on one Redis; ``<tag>`` is :func:`slot_tag` of the id):

- ``<namespace>:session:{<tag>}:<id>``: the state as JSON, written with ``SET ... EX ttl`` so an abandoned
  conversation disappears by itself;
- ``<namespace>:lock:{<tag>}:<id>``: the turn lock, ``SET NX PX lock_timeout`` with a random token (in a
  short Lua script, so a retried attempt recognises its own token). The lock
  expires if its holder dies, and it is released by a Lua script that deletes it only when the token is
  still the holder's, so a turn whose lock expired never releases the lock another turn has taken since.

The same URL may name a Redis Cluster (``redis+cluster://host1:port1,host2:port2``, see
:mod:`csbot.redis_client`). Redis Cluster hashes only the part of a key between its first ``{`` and the
first ``}`` after it (the hash tag), so a session's two keys, which share ``{<tag>}``, always live in one
slot: the scripts that touch both run on one node, and a resharding moves them together. The tag is 16
hex digits of a BLAKE2b hash of the id rather than the id itself, so no id (empty, or full of braces) can
change where the tag starts or ends, and sessions spread evenly over the slots. The namespace may not
hold braces for the same reason. The keys are the same on one server, where the tag costs nothing.

Upgrading from a version that named the keys ``<namespace>:session:<id>`` and ``<namespace>:lock:<id>``:
state stored under the old names is not read, so conversations in progress start over once; the old keys
expire by their TTL. (Sessions are short-lived, so no migration is attempted.)

A turn through ``transaction`` costs two round trips instead of four: one script takes the lock and
reads the state, another writes the state and releases the lock. A stored state that cannot be read back
starts the conversation over (see :mod:`bot.sessions.base`). The write is fenced by the token: when
the turn outlived its lock and another turn holds the session now, nothing is written and
:class:`~csbot.errors.LockTimeoutError` is raised, so the other turn's update is never overwritten.

A Redis failure is raised as :class:`~csbot.errors.StoreUnavailableError` when the server does not answer
(a refused command as :class:`~csbot.errors.StoreError`), naming the URL with its password masked (see
:mod:`csbot.redis_client`); nothing falls back to memory. redis-py reconnects by itself, so once the
server is back the next call works again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeVar

import redis.asyncio as aioredis

from bot.sessions.base import CorruptStateError, SessionStore, decode_state, discard_corrupt, encode_state
from bot.sessions.state import SessionState
from csbot.errors import ConfigError, LockTimeoutError, StoreError
from csbot.redis_client import client_from_url, mask_url, redis_errors, translate

if TYPE_CHECKING:
    from typing import Self

    from redis.asyncio.cluster import RedisCluster

    from bot.sessions.config import SessionsConfig

logger = logging.getLogger(__name__)

T = TypeVar("T")

_REDIS_ERRORS = redis_errors()


def slot_tag(session_id: str) -> str:
    """The hash tag of a session's keys: 16 hex digits of BLAKE2b over the id (never empty, never a brace)."""
    return hashlib.blake2b(session_id.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()

#: Takes the lock (SET NX PX with the caller's token); returns 1 if the caller holds it now. A lock that
#: already holds the caller's token counts as taken, so redis-py's retry of a SET whose reply was lost
#: does not lock the caller out of its own lock until it expires.
ACQUIRE_SCRIPT = """
if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then
    return 1
end
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return 1
end
return 0
"""

#: ACQUIRE_SCRIPT, then the state read in the same step: ``{0}`` when another turn holds the lock,
#: ``{1}`` when taken and no state is stored, ``{1, state}`` when taken and a state is stored.
ACQUIRE_AND_LOAD_SCRIPT = """
if not redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then
    if redis.call("GET", KEYS[1]) ~= ARGV[1] then
        return {0}
    end
end
local state = redis.call("GET", KEYS[2])
if state then
    return {1, state}
end
return {1}
"""

#: Writes the state (``SET ... EX ttl``) and releases the lock, fenced by the caller's token: 1 when the
#: lock was still the caller's, 2 when it had expired and nobody took it since (written anyway), 0 when
#: another turn holds it now (nothing written).
SAVE_AND_RELEASE_SCRIPT = """
local holder = redis.call("GET", KEYS[1])
if holder == ARGV[1] then
    redis.call("SET", KEYS[2], ARGV[2], "EX", ARGV[3])
    redis.call("DEL", KEYS[1])
    return 1
end
if not holder then
    redis.call("SET", KEYS[2], ARGV[2], "EX", ARGV[3])
    return 2
end
return 0
"""

#: Deletes the lock only if it still holds the caller's token; returns 1 if it did.
RELEASE_SCRIPT = """
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("DEL", KEYS[1])
end
return 0
"""


class RedisSessionStore(SessionStore):
    """Sessions in Redis, shared by every process that uses the same URL and namespace."""

    #: Mean pause between two attempts to take a lock held by another turn (jittered ±50 %).
    poll_interval = 0.01

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        namespace: str = "csbot",
        ttl_seconds: int = 86400,
        lock_timeout_seconds: float = 10,
        lock_wait_seconds: float = 15,
        socket_timeout: float = 2,
    ) -> None:
        if int(ttl_seconds) < 1:
            raise ConfigError(f"sessions.ttl_seconds must be at least 1, got {ttl_seconds}")
        if lock_timeout_seconds <= 0:
            raise ConfigError(f"sessions.lock_timeout_seconds must be positive, got {lock_timeout_seconds}")
        if lock_wait_seconds < 0:
            raise ConfigError(f"sessions.lock_wait_seconds must not be negative, got {lock_wait_seconds}")
        if "{" in namespace or "}" in namespace:
            raise ConfigError(f"sessions.namespace must not contain '{{' or '}}' (they would move the Redis "
                              f"Cluster hash tag of the session keys), got {namespace!r}")
        self.url = url
        self.display_url = mask_url(url)
        self.namespace = namespace
        self.ttl_seconds = int(ttl_seconds)
        self.lock_timeout_seconds = lock_timeout_seconds
        self.lock_wait_seconds = lock_wait_seconds
        self._lock_ms = max(1, round(lock_timeout_seconds * 1000))
        # One quick retry covers a pooled connection that died with a restarted server (every command here
        # is safe to repeat); more would only make a real outage slower to report.
        # Replies stay bytes: ``decode_state`` decodes a stored state, so one that is not UTF-8 is a corrupt state
        # for the turn to start over from, not a UnicodeDecodeError inside redis-py that leaves the lock behind.
        self._redis: aioredis.Redis | RedisCluster = client_from_url(url, socket_timeout, decode_responses=False, retries=1)
        self._acquire_script = self._redis.register_script(ACQUIRE_SCRIPT)
        self._release_script = self._redis.register_script(RELEASE_SCRIPT)
        self._acquire_load_script = self._redis.register_script(ACQUIRE_AND_LOAD_SCRIPT)
        self._save_release_script = self._redis.register_script(SAVE_AND_RELEASE_SCRIPT)

    @classmethod
    def from_config(cls, config: SessionsConfig) -> Self:
        return cls(
            url=config.url,
            namespace=config.namespace,
            ttl_seconds=config.ttl_seconds,
            lock_timeout_seconds=config.lock_timeout_seconds,
            lock_wait_seconds=config.lock_wait_seconds,
            socket_timeout=config.socket_timeout_seconds,
        )

    def session_key(self, session_id: str) -> str:
        """``<namespace>:session:{<tag>}:<id>``, in the same cluster slot as :meth:`lock_key`."""
        return f"{self.namespace}:session:{{{slot_tag(session_id)}}}:{session_id}"

    def lock_key(self, session_id: str) -> str:
        """``<namespace>:lock:{<tag>}:<id>``, in the same cluster slot as :meth:`session_key`."""
        return f"{self.namespace}:lock:{{{slot_tag(session_id)}}}:{session_id}"

    async def start(self) -> None:
        await self._run("the start-up PING", self._redis.ping())
        logger.info("session store: Redis at %s, namespace %r", self.display_url, self.namespace)

    async def close(self) -> None:
        await self._run("closing the connections", self._redis.aclose())

    async def load(self, session_id: str) -> SessionState:
        key = self.session_key(session_id)
        raw = await self._run(f"loading session {session_id!r}", self._redis.get(key))
        if raw is None:
            return SessionState(session_id)
        return decode_state(session_id, raw, f"Redis key {key!r} at {self.display_url}")

    async def save(self, state: SessionState) -> None:
        data = encode_state(state)
        await self._run(
            f"saving session {state.session_id!r}",
            self._redis.set(self.session_key(state.session_id), data, ex=self.ttl_seconds),
        )

    async def delete(self, session_id: str) -> None:
        await self._run(f"deleting session {session_id!r}", self._redis.delete(self.session_key(session_id)))

    @asynccontextmanager
    async def lock(self, session_id: str) -> AsyncIterator[None]:
        """Hold :meth:`lock_key` for one turn, polling for it up to ``lock_wait_seconds``."""
        key = self.lock_key(session_id)
        token = secrets.token_hex(16)
        await self._acquire(session_id, key, lambda: self._acquire_script(keys=[key], args=[token, self._lock_ms]),
                            token)
        try:
            yield
        except BaseException:
            await self._release_quietly(session_id, key, token)
            raise
        await self._release(session_id, key, token)

    @asynccontextmanager
    async def transaction(self, session_id: str) -> AsyncIterator[SessionState]:
        """Lock and load in one script, save and unlock in another (see the module docstring)."""
        lock_key, state_key = self.lock_key(session_id), self.session_key(session_id)
        token = secrets.token_hex(16)
        reply = await self._acquire(
            session_id, lock_key,
            lambda: self._acquire_load_script(keys=[lock_key, state_key], args=[token, self._lock_ms]), token,
        )
        try:
            if len(reply) > 1:
                try:
                    state = decode_state(session_id, reply[1], f"Redis key {state_key!r} at {self.display_url}")
                except CorruptStateError as exc:  # the turn starts over; its save replaces the entry
                    state = discard_corrupt(session_id, exc)
            else:
                state = SessionState(session_id)
            yield state
        except BaseException:
            await self._release_quietly(session_id, lock_key, token)
            raise
        try:
            data = encode_state(state)
            written = await self._run(
                f"saving session {session_id!r}",
                self._save_release_script(keys=[lock_key, state_key], args=[token, data, self.ttl_seconds]),
            )
        except BaseException:
            await self._release_quietly(session_id, lock_key, token)
            raise
        if written == 0:
            raise LockTimeoutError(
                f"session {session_id!r}: the turn outlived its lock (sessions.lock_timeout_seconds = "
                f"{self.lock_timeout_seconds:g} s) and another turn holds the session now, so this turn's "
                "changes were not saved"
            )
        if written == 2:
            logger.warning(
                "session %r: the turn outlived its lock (sessions.lock_timeout_seconds = %g s); "
                "no other turn took it, so the state was saved",
                session_id, self.lock_timeout_seconds,
            )

    async def _acquire(self, session_id: str, key: str, attempt: Callable[[], Awaitable[T]], token: str) -> T:
        """Run ``attempt`` until it reports the lock taken (a truthy reply, or a list starting with 1)."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        deadline = loop.time() + self.lock_wait_seconds
        try:
            while True:
                reply = await self._run(f"locking session {session_id!r}", attempt())
                if (reply[0] if isinstance(reply, list) else reply):
                    return reply
                if task is not None and task.cancelling():
                    # redis-py can swallow a cancellation that lands mid-command: stop polling all the same
                    raise asyncio.CancelledError
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise LockTimeoutError(
                        f"session {session_id!r} stayed locked by another turn for more than "
                        f"{self.lock_wait_seconds:g} s (sessions.lock_wait_seconds; Redis key {key!r})"
                    )
                await asyncio.sleep(min(remaining, self.poll_interval * random.uniform(0.5, 1.5)))
        except asyncio.CancelledError:
            # The SET may have reached the server before the cancellation: do not leave the lock behind.
            await self._release_quietly(session_id, key, token, held=False)
            raise

    async def _release(self, session_id: str, key: str, token: str, held: bool = True) -> None:
        """Delete the lock if it is still ours; warn when a ``held`` lock expired during the turn."""
        released = await self._run(
            f"unlocking session {session_id!r}", self._release_script(keys=[key], args=[token])
        )
        if held and not released:
            logger.warning(
                "session %r: the turn outlived its lock (sessions.lock_timeout_seconds = %g s), "
                "so another turn may have run at the same time",
                session_id, self.lock_timeout_seconds,
            )

    async def _release_quietly(self, session_id: str, key: str, token: str, held: bool = True) -> None:
        """Release after a failed turn: a Redis error here is logged, the turn's own error propagates."""
        try:
            await self._release(session_id, key, token, held)
        except StoreError as exc:
            logger.warning("%s; the lock expires by itself after %g s", exc, self.lock_timeout_seconds)

    async def _run(self, what: str, command: Awaitable[T]) -> T:
        """Await one Redis command; a Redis or socket error is raised as :func:`csbot.redis_client.translate` gives it."""
        try:
            return await command
        except _REDIS_ERRORS as exc:
            raise translate(exc, "session store", self.url, what) from exc
