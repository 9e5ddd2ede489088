"""Helpers for the session store tests: a store subclass for ``create_store`` by dotted path, the
turn body the concurrency tests share, and (run as a script) one OS process doing locked turns.

Script use: ``python sessions_helpers.py URL NAMESPACE SESSION_ID FIRST COUNT MODE`` waits until two
processes have checked in on a Redis barrier key, then runs COUNT concurrent turns (``turn``'s MODE) with
slots FIRST.. .
"""

from __future__ import annotations

import asyncio
import sys

from bot.sessions import MemorySessionStore, SessionStore


class TaggedStore(MemorySessionStore):
    """A store subclass that ``create_store`` must find by dotted path."""

    tag = "custom"


class NotAStore:
    """Importable, but not a SessionStore."""


class HalfStore(SessionStore):
    """A SessionStore subclass that forgot its abstract methods."""


async def turn(store: SessionStore, session_id: str, i: int, mode: str = "lock") -> None:
    """One read-modify-write turn: count it and record slot ``k{i}``.

    ``mode``: ``lock`` (lock, load, save), ``transaction`` (``store.transaction``, what the dialogue
    manager uses) or ``none`` (load and save unlocked, which loses updates).
    """
    if mode == "transaction":
        async with store.transaction(session_id) as state:
            state.turn_count += 1
            state.slots[f"k{i}"] = i
            await asyncio.sleep(0)
    elif mode == "lock":
        async with store.lock(session_id):
            await _update(store, session_id, i)
    else:
        await _update(store, session_id, i)


async def _update(store: SessionStore, session_id: str, i: int) -> None:
    state = await store.load(session_id)
    state.turn_count += 1
    state.slots[f"k{i}"] = i
    await asyncio.sleep(0)
    await store.save(state)


async def _process_main(url: str, namespace: str, session_id: str, first: int, count: int, mode: str) -> None:
    from bot.sessions import RedisSessionStore

    async with RedisSessionStore(url, namespace=namespace, lock_wait_seconds=20) as store:
        barrier = f"{namespace}:test-barrier"
        await store._redis.incr(barrier)
        for _ in range(2000):  # both processes start their turns together, or the test proves nothing
            if int(await store._redis.get(barrier)) >= 2:
                break
            await asyncio.sleep(0.005)
        else:
            raise SystemExit("the other process never checked in")
        await asyncio.gather(*(turn(store, session_id, i, mode) for i in range(first, first + count)))
    print("done", count)


if __name__ == "__main__":
    url, namespace, session_id, first, count, mode = sys.argv[1:7]
    asyncio.run(_process_main(url, namespace, session_id, int(first), int(count), mode))
