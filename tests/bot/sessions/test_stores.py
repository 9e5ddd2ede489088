"""Session stores: one test body over memory and a real Redis, then Redis's own guarantees.

No fakes for Redis: every Redis test talks to a real ``redis-server`` (fixtures in tests/conftest.py).
Coroutines run with ``asyncio.run`` inside plain test functions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sessions_helpers import TaggedStore, turn

from bot.sessions import (
    MemorySessionStore,
    RedisSessionStore,
    SessionsConfig,
    SessionState,
    SessionStore,
    create_store,
)
from bot.sessions import base as store_base
from bot.sessions.base import decode_state, encode_state
from bot.sessions.redis import slot_tag
from bot.sessions.state import (
    HISTORY_LENGTH,
    Choice,
    HistoryEntry,
    PausedForm,
    PendingClarification,
    PendingConfirmation,
)
from csbot.errors import (
    ConfigError,
    LockTimeoutError,
    StoreError,
    StoreUnavailableError,
)
from csbot.redis_client import mask_url

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]

StoreFactory = Callable[..., SessionStore]


def skey(session_id: str, namespace: str = "csbot") -> str:
    """The Redis key of a session's state (hash-tagged, so it shares a cluster slot with its lock)."""
    return f"{namespace}:session:{{{slot_tag(session_id)}}}:{session_id}"


def lkey(session_id: str, namespace: str = "csbot") -> str:
    """The Redis key of a session's turn lock."""
    return f"{namespace}:lock:{{{slot_tag(session_id)}}}:{session_id}"


@pytest.fixture(params=["memory", "redis"])
def make_store(request) -> StoreFactory:
    """Builds a store of the parametrised backend; Redis ones use the (flushed) test-session server.

    The memory store's lock never expires and its lock timeout bounds the wait, so ``lock_wait_seconds``
    becomes its ``lock_timeout_seconds``.
    """
    if request.param == "memory":
        def memory(**kw) -> SessionStore:
            kw.pop("namespace", None)
            if "lock_wait_seconds" in kw:
                kw["lock_timeout_seconds"] = kw.pop("lock_wait_seconds")
            return MemorySessionStore(**kw)
        return memory
    url = request.getfixturevalue("redis_url")
    return lambda **kw: RedisSessionStore(url, **kw)


def full_state(session_id: str) -> SessionState:
    """A state in which every field differs from its default, so a round trip checks them all."""
    state = SessionState(
        session_id=session_id,
        turn_count=7,
        active_intent="track_order",
        slots={"order_id": "48213", "qty": 2, "gift": True, "note": None, "émoji": "📦"},
        requested_slot="email",
        consecutive_failures=2,
        handoff=True,
        paused=[PausedForm("cancel_order", {"order_id": "1"}, None), PausedForm("change_address", {}, "order_id")],
        pending=PendingClarification([Choice("Do you ship?", "Do you ship?", "Yes, to the EU.", "qa-1"),
                                      Choice("2", "Gift wrap?", "3 EUR.", "qa-2")]),
        variants={"utter_greet": 1},
        history=[HistoryEntry("hi", "Hello!", "template", "greet"),
                 HistoryEntry("where is 48213", "On its way.", "template", "track_order", "track_order",
                              {"order_id": "48213"})],
        channel="telegram",
        recipient_id="chat-42",
        created_at=1_700_000_000.5,
        updated_at=1_700_000_001.5,
    )
    defaults = SessionState(session_id)
    for f in dataclasses.fields(SessionState):
        if f.name != "session_id" and f.metadata.get("stored", True):  # reset_reason is never stored
            assert getattr(state, f.name) != getattr(defaults, f.name), f"set {f.name} in full_state()"
    return state


# -- every backend -----------------------------------------------------------------------------


def test_round_trip_keeps_every_field(make_store):
    async def main():
        async with make_store() as store:
            state = full_state("s1")
            before = time.time()
            await store.save(state)
            assert before <= state.updated_at <= time.time()  # save stamps updated_at
            loaded = await store.load("s1")
            assert loaded.to_dict() == state.to_dict()
            assert loaded == state and loaded is not state  # the nested parts come back as their dataclasses
            assert isinstance(loaded.pending, PendingClarification) and isinstance(loaded.pending.choices[1], Choice)
            assert all(isinstance(p, PausedForm) for p in loaded.paused)
            assert all(isinstance(h, HistoryEntry) for h in loaded.history)
            loaded.slots["order_id"] = "changed"  # a loaded state is a copy: unsaved edits change nothing
            loaded.history.append(HistoryEntry("x", "y"))
            loaded.paused[0].slots["order_id"] = "changed"
            assert loaded.pending is not None
            loaded.pending.choices.clear()
            again = await store.load("s1")
            assert again.slots["order_id"] == "48213" and len(again.history) == 2
            assert again.paused[0].slots == {"order_id": "1"} and len(again.pending.choices) == 2

    asyncio.run(main())


@pytest.mark.parametrize("pending", [None, PendingConfirmation("cancel_order"),
                                     PendingClarification([Choice("a", "A?", "A.", "qa-a")])])
def test_round_trip_of_each_pending_question(make_store, pending):
    async def main():
        async with make_store() as store:
            state = SessionState("p", active_intent="cancel_order", pending=pending)
            await store.save(state)
            loaded = await store.load("p")
            assert loaded.pending == pending and type(loaded.pending) is type(pending)

    asyncio.run(main())


#: A session as stored before the state's nested parts were dataclasses (and before it kept its channel).
OLD_SHAPE = {
    "session_id": "old", "turn_count": 3, "active_intent": "cancel_order", "slots": {"order_id": "51730"},
    "requested_slot": None, "consecutive_failures": 0, "handoff": False,
    "paused": [{"intent": "track_order", "slots": {}, "requested_slot": "order_id"}],
    "pending": {"kind": "confirm", "intent": "cancel_order"},
    "variants": {"greet": 0},
    "history": [{"user": "hi", "bot": "Hello!", "source": "template", "intent": "greet"},
                {"user": "where is 48213", "bot": "On its way.", "source": "template", "intent": "track_order",
                 "completed": "track_order", "slots": {"order_id": "48213"}}],
    "created_at": 1_700_000_000.5, "updated_at": 1_700_000_001.5,
}


def test_a_session_stored_in_the_old_dict_shape_loads_typed():
    state = SessionState.from_dict(json.loads(json.dumps(OLD_SHAPE)))
    assert state.pending == PendingConfirmation("cancel_order")
    assert state.paused == [PausedForm("track_order", {}, "order_id")]
    assert state.history == [HistoryEntry("hi", "Hello!", "template", "greet"),
                             HistoryEntry("where is 48213", "On its way.", "template", "track_order",
                                          completed="track_order", slots={"order_id": "48213"})]
    assert (state.channel, state.recipient_id) == (None, None)  # not known until the next message
    # the JSON shape is unchanged: the old dict plus the two new fields
    assert state.to_dict() == {**OLD_SHAPE, "channel": None, "recipient_id": None}
    assert decode_state("old", encode_state(state), "here") == state


def test_a_session_stored_in_the_old_dict_shape_loads_from_redis(redis_url):
    async def main():
        raw = aioredis.Redis.from_url(redis_url)
        await raw.set(skey("old"), json.dumps(OLD_SHAPE))
        await raw.aclose()
        async with RedisSessionStore(redis_url) as store:
            state = await store.load("old")
            assert state.pending == PendingConfirmation("cancel_order") and state.turn_count == 3
            assert state.history[-1].completed == "track_order"

    asyncio.run(main())


def test_stored_nested_parts_that_do_not_fit():
    unknown = {**OLD_SHAPE, "pending": {"kind": "survey", "question": "how did we do?"}}
    assert SessionState.from_dict(unknown).pending is None  # a kind from a newer version is dropped
    for bad in ({**OLD_SHAPE, "pending": {"kind": "confirm"}},
                {**OLD_SHAPE, "paused": [{"slots": {}}]},
                {**OLD_SHAPE, "history": [{"bot": "no user"}]},
                {**OLD_SHAPE, "history": ["not an object"]},
                {**OLD_SHAPE, "pending": {"kind": "clarify", "choices": [{"payload": "1"}]}}):
        with pytest.raises(StoreError, match="corrupt"):
            decode_state("old", json.dumps(bad), "here")


#: (field, a value of the wrong type) for every field a stored state has, and in its nested parts.
WRONG_TYPES = [
    ("turn_count", "3"), ("turn_count", 2.5), ("turn_count", True), ("turn_count", -1), ("turn_count", None),
    ("active_intent", 5), ("active_intent", ["track_order"]), ("slots", "order_id=48213"), ("slots", ["48213"]),
    ("requested_slot", {"name": "order_id"}), ("consecutive_failures", "0"), ("consecutive_failures", -2),
    ("handoff", "yes"), ("handoff", 1), ("paused", "track_order"), ("paused", [{"intent": 5}]),
    ("paused", [{"intent": "x", "slots": "y"}]), ("paused", [{"intent": "x", "requested_slot": 1}]),
    ("pending", "confirm"), ("pending", {"kind": ["confirm"]}), ("pending", {"kind": "confirm", "intent": 5}),
    ("pending", {"kind": "clarify", "choices": "1"}), ("pending", {"kind": "clarify", "choices": ["x"]}),
    ("pending", {"kind": "clarify", "choices": [{"payload": 1, "question": "q", "answer": "a", "id": "i"}]}),
    ("variants", ["greet"]), ("variants", {"greet": "0"}), ("history", {"user": "hi"}),
    ("history", [{"user": "hi", "bot": 5}]), ("history", [{"user": "hi", "slots": "x"}]),
    ("history", [{"user": "hi", "intent": 1}]), ("channel", 5), ("recipient_id", ["x"]), ("created_at", "today"),
    ("updated_at", None),
]


@pytest.mark.parametrize(("field", "value"), WRONG_TYPES)
def test_a_stored_field_of_the_wrong_type_is_a_corrupt_state(field, value):
    """Issue 12: ``from_dict`` took a string turn_count (and any other wrong type) as it was, and the turn
    then crashed on it; every field's type is checked now, so the stores report the state as corrupt."""
    with pytest.raises(ValueError, match=field.split("_")[0]):  # the message names the field
        SessionState.from_dict({**OLD_SHAPE, field: value})
    with pytest.raises(store_base.CorruptStateError, match="corrupt") as caught:
        decode_state("old", json.dumps({**OLD_SHAPE, field: value}), "here")
    assert caught.value.session_id == "old" and isinstance(caught.value, StoreError)


def test_what_json_cannot_hold_or_nests_too_deep_is_a_corrupt_state():
    for raw in ("[" * 100_000 + "]" * 100_000, '{"turn_count": ' + "9" * 5000 + "}", b"\xff\xfe{}", "NaN",
                '{"turn_count": 1e400}'):
        with pytest.raises(store_base.CorruptStateError):
            decode_state("s", raw, "here")
    assert decode_state("s", '{"created_at": 1, "updated_at": 2.5}', "here").created_at == 1  # ints are numbers


async def _plant(store: SessionStore, session_id: str, raw: str | bytes) -> None:
    """Store ``raw`` as the state of ``session_id`` behind the store's back."""
    if isinstance(store, MemorySessionStore):
        store._data[session_id] = (raw, time.monotonic() + store.ttl_seconds)
    else:
        await store._redis.set(store.session_key(session_id), raw)


async def _raw(store: SessionStore, session_id: str) -> str | bytes | None:
    if isinstance(store, MemorySessionStore):
        entry = store._data.get(session_id)
        return entry[0] if entry else None
    return await store._redis.get(store.session_key(session_id))


@pytest.mark.parametrize("raw", ["{not json", b"\xff\xfe{", "[1, 2]", '{"turn_count": "3"}',
                                 '{"history": [{"user": 5}]}'])
def test_a_turn_on_a_corrupt_state_starts_over_and_touches_nothing_else(make_store, raw, caplog):
    """Issue 12: corrupt JSON left its session failing until its TTL ended. ``load`` reports it; a turn
    (``transaction``) logs a warning naming the session and starts from a fresh state, which its save
    stores in place of the bad entry. No other session changes."""
    async def main():
        async with make_store(lock_wait_seconds=0.5) as store:
            await store.save(full_state("other"))
            other = await _raw(store, "other")
            await _plant(store, "bad", raw)
            async with store.transaction("bad") as state:
                assert state == SessionState("bad", created_at=state.created_at, updated_at=state.updated_at)
                assert "corrupt" in state.reset_reason
                state.turn_count += 1
            loaded = await store.load("bad")
            assert loaded.turn_count == 1 and loaded.reset_reason is None  # never stored
            async with store.transaction("bad") as state:  # the lock was released, the next turn is ordinary
                assert state.turn_count == 1 and state.reset_reason is None
            assert await _raw(store, "other") == other
            await _plant(store, "bad-too", raw)
            with pytest.raises(store_base.CorruptStateError, match="corrupt") as caught:  # load reports it
                await store.load("bad-too")
            assert caught.value.session_id == "bad-too" and isinstance(caught.value, StoreError)

    with caplog.at_level(logging.WARNING, logger="bot.sessions.base"):
        asyncio.run(main())
    warnings = [r.getMessage() for r in caplog.records if r.name == "bot.sessions.base"]
    assert len(warnings) == 1 and "'bad'" in warnings[0] and "starts over" in warnings[0]


def test_a_lone_surrogate_in_a_state_is_stored_as_a_replacement_character(make_store):
    async def main():
        async with make_store() as store:
            state = SessionState("s", slots={"note": "a\udcffb"})
            state.remember(HistoryEntry("x\ud800", "y"))
            await store.save(state)
            loaded = await store.load("s")
            assert loaded.slots == {"note": "a\ufffdb"} and loaded.history[0].user == "x\ufffd"

    asyncio.run(main())


def test_history_keeps_the_last_turns():
    state = SessionState("h")
    for i in range(HISTORY_LENGTH + 3):
        state.remember(HistoryEntry(f"u{i}", f"b{i}"))
    assert [h.user for h in state.history] == [f"u{i}" for i in range(3, HISTORY_LENGTH + 3)]
    state.active_intent, state.slots, state.requested_slot = "track_order", {"order_id": "1"}, "email"
    state.pending = PendingConfirmation("track_order")
    state.clear_form()
    assert (state.active_intent, state.slots, state.requested_slot, state.pending) == (None, {}, None, None)


def test_missing_session_is_fresh(make_store):
    async def main():
        async with make_store() as store:
            state = await store.load("nobody")
            assert state.session_id == "nobody"
            fresh = SessionState("nobody")
            assert {k: v for k, v in state.to_dict().items() if not k.endswith("_at")} == {
                k: v for k, v in fresh.to_dict().items() if not k.endswith("_at")
            }

    asyncio.run(main())


def test_delete_and_reset(make_store):
    async def main():
        async with make_store() as store:
            for sid in ("a", "b", "c"):
                await store.save(full_state(sid))
            await store.delete("a")
            await store.reset("b")
            await store.delete("never-saved")  # not an error
            assert (await store.load("a")).turn_count == 0
            assert (await store.load("b")).slots == {}
            assert (await store.load("c")).turn_count == 7

    asyncio.run(main())


@pytest.mark.parametrize("mode", ["lock", "transaction"])
def test_no_lost_updates_under_the_lock(make_store, mode):
    async def main():
        async with make_store(lock_timeout_seconds=10, lock_wait_seconds=20) as store:
            await asyncio.gather(*(turn(store, "busy", i, mode) for i in range(50)))
            state = await store.load("busy")
            assert state.turn_count == 50
            assert state.slots == {f"k{i}": i for i in range(50)}
        if isinstance(store, MemorySessionStore):
            assert store._locks == {}  # per-session locks are dropped once free

    asyncio.run(main())


def test_without_the_lock_updates_are_lost(make_store):
    """The same turns unlocked lose updates, so the test above can fail."""

    async def main():
        async with make_store() as store:
            await asyncio.gather(*(turn(store, "busy", i, "none") for i in range(50)))
            state = await store.load("busy")
            assert state.turn_count < 50
            assert len(state.slots) < 50

    asyncio.run(main())


def test_lock_wait_times_out(make_store):
    async def main():
        async with make_store(lock_timeout_seconds=10, lock_wait_seconds=0.3) as store:
            holding, done = asyncio.Event(), asyncio.Event()

            async def holder():
                async with store.lock("s"):
                    holding.set()
                    await done.wait()

            task = asyncio.create_task(holder())
            await holding.wait()
            started = time.monotonic()
            with pytest.raises(LockTimeoutError, match="'s'"):
                async with store.lock("s"):
                    pass
            assert 0.25 <= time.monotonic() - started < 3
            done.set()
            await task
            async with store.lock("s"):  # free again once the holder is done
                pass
            holding.clear(), done.clear()
            other = asyncio.create_task(holder())
            await holding.wait()
            async with store.lock("t"):  # another session is not blocked by this one
                pass
            done.set()
            await other

    asyncio.run(main())


def test_an_error_inside_the_turn_releases_the_lock(make_store):
    async def main():
        async with make_store(lock_timeout_seconds=5, lock_wait_seconds=0.2) as store:
            with pytest.raises(ValueError):
                async with store.lock("s"):
                    raise ValueError("the turn failed")
            async with store.lock("s"):
                pass

    asyncio.run(main())


def test_transaction_saves_on_success_and_discards_on_error(make_store):
    async def main():
        async with make_store(lock_timeout_seconds=5, lock_wait_seconds=0.2) as store:
            async with store.transaction("s") as state:
                assert state.session_id == "s" and state.turn_count == 0  # a fresh state when none is stored
                state.turn_count, state.slots = 1, {"order_id": "48213"}
            stored = await store.load("s")
            assert stored.turn_count == 1 and stored.slots == {"order_id": "48213"}
            with pytest.raises(ValueError):
                async with store.transaction("s") as state:
                    state.turn_count = 99
                    raise ValueError("the turn failed")
            assert (await store.load("s")).turn_count == 1  # nothing of the failed turn was saved
            async with store.transaction("s") as state:  # and the lock was released
                assert state.to_dict() == stored.to_dict()

    asyncio.run(main())


def test_transaction_waits_for_the_lock_and_times_out(make_store):
    async def main():
        async with make_store(lock_timeout_seconds=10, lock_wait_seconds=0.3) as store:
            async with store.lock("s"):
                with pytest.raises(LockTimeoutError, match="'s'"):
                    async with store.transaction("s"):
                        pass
            async with store.transaction("s") as state:
                state.turn_count = 3
            assert (await store.load("s")).turn_count == 3

    asyncio.run(main())


def test_transaction_state_that_cannot_be_stored_releases_the_lock(make_store):
    async def main():
        async with make_store(lock_timeout_seconds=5, lock_wait_seconds=0.2) as store:
            with pytest.raises(StoreError, match="JSON"):
                async with store.transaction("s") as state:
                    state.slots["when"] = object()
            async with store.lock("s"):
                pass
            assert (await store.load("s")).slots == {}

    asyncio.run(main())


def test_cancelled_turns_leave_no_lock_behind(make_store, caplog):
    """A turn cancelled while waiting takes nothing; one cancelled while holding the lock releases it."""

    async def main():
        async with make_store(lock_timeout_seconds=10, lock_wait_seconds=0.3) as store:
            holding, done = asyncio.Event(), asyncio.Event()

            async def holder():
                async with store.lock("s"):
                    holding.set()
                    await done.wait()

            first = asyncio.create_task(holder())
            await holding.wait()
            waiter = asyncio.create_task(holder())
            await asyncio.sleep(0.05)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            with pytest.raises(LockTimeoutError):  # the first turn still holds the session
                async with store.lock("s"):
                    pass
            first.cancel()  # cancelled while holding
            with pytest.raises(asyncio.CancelledError):
                await first
            started = time.monotonic()
            async with store.lock("s"):
                assert time.monotonic() - started < 0.2
        if isinstance(store, MemorySessionStore):
            assert store._locks == {}

    with caplog.at_level(logging.WARNING):
        asyncio.run(main())
    assert "outlived" not in caplog.text


def test_memory_ttl_expires_and_each_save_refreshes_it(monkeypatch):
    now = [1000.0]

    class Clock:
        @staticmethod
        def monotonic() -> float:
            return now[0]

    monkeypatch.setattr("bot.sessions.memory.time", Clock)

    async def main():
        store = MemorySessionStore(ttl_seconds=10)
        await store.save(full_state("s"))
        now[0] += 8
        assert (await store.load("s")).turn_count == 7
        await store.save(await store.load("s"))  # refreshes: 8 + 8 s after the first save it still lives
        now[0] += 8
        assert (await store.load("s")).turn_count == 7
        now[0] += 2.5
        assert (await store.load("s")).turn_count == 0  # 10.5 s after the last save: gone
        assert "s" not in store._data

    asyncio.run(main())


def test_memory_store_sweeps_expired_sessions(monkeypatch):
    now = [0.0]
    monkeypatch.setattr("bot.sessions.memory.time", type("Clock", (), {"monotonic": staticmethod(lambda: now[0])}))

    async def main():
        store = MemorySessionStore(ttl_seconds=100)
        await store.save(SessionState("old"))
        now[0] += 150
        await store.save(SessionState("new"))  # a save after the sweep interval drops the expired one
        assert set(store._data) == {"new"}

    asyncio.run(main())


# -- Redis only ------------------------------------------------------------------------------


def test_redis_keys_ttl_set_and_refreshed(redis_url):
    async def main():
        raw = aioredis.Redis.from_url(redis_url, decode_responses=True)
        async with RedisSessionStore(redis_url, ttl_seconds=100) as store:
            await store.save(full_state("s"))
            assert await raw.exists(skey("s"))
            assert 95 <= await raw.ttl(skey("s")) <= 100
            await raw.expire(skey("s"), 5)
            await store.save(await store.load("s"))
            assert 95 <= await raw.ttl(skey("s")) <= 100  # every save restarts the TTL
            async with store.lock("s"):
                assert 0 < await raw.pttl(lkey("s")) <= 10_000  # the lock expires too
            assert not await raw.exists(lkey("s"))
        async with RedisSessionStore(redis_url, ttl_seconds=1) as short:
            await short.save(full_state("brief"))
            await asyncio.sleep(1.3)
            assert (await short.load("brief")).turn_count == 0  # Redis expired it
        await raw.aclose()

    asyncio.run(main())


def test_redis_namespaces_are_isolated(redis_url):
    async def main():
        async with RedisSessionStore(redis_url, namespace="shop-a") as a, \
                RedisSessionStore(redis_url, namespace="shop-b") as b:
            await a.save(full_state("s"))
            assert (await b.load("s")).turn_count == 0
            await b.save(SessionState("s", turn_count=1))
            await b.delete("s")
            assert (await a.load("s")).turn_count == 7
            async with a.lock("s"), b.lock("s"):  # locks are per namespace too
                pass
            raw = aioredis.Redis.from_url(redis_url, decode_responses=True)
            assert await raw.keys("*") == [skey("s", "shop-a")]
            await raw.aclose()

    asyncio.run(main())


def test_redis_corrupt_state_is_a_store_error(redis_url):
    async def main():
        raw = aioredis.Redis.from_url(redis_url)
        await raw.set(skey("bad"), b"{not json")
        await raw.aclose()
        async with RedisSessionStore(redis_url) as store:
            with pytest.raises(StoreError, match=re.escape(skey("bad"))):
                await store.load("bad")

    asyncio.run(main())


@pytest.mark.parametrize("mode", ["lock", "transaction"])
def test_two_processes_share_one_redis(redis_url, mode):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    script = str(HERE / "sessions_helpers.py")
    procs = [
        subprocess.Popen(
            [sys.executable, script, redis_url, "csbot", "shared", str(first), "25", mode],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for first in (0, 25)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "done 25" in out

    async def check():
        async with RedisSessionStore(redis_url) as store:
            state = await store.load("shared")
            assert state.turn_count == 50
            assert state.slots == {f"k{i}": i for i in range(50)}

    asyncio.run(check())


def test_redis_outage_mid_conversation_and_recovery(own_redis_server):
    async def main():
        async with RedisSessionStore(own_redis_server.url, socket_timeout=1, lock_wait_seconds=1) as store:
            await store.save(full_state("s"))
            own_redis_server.stop()
            with pytest.raises(StoreUnavailableError, match=r"127\.0\.0\.1:\d+.*loading session 's'"):
                await store.load("s")
            with pytest.raises(StoreUnavailableError, match="saving session 's'"):
                await store.save(full_state("s"))
            with pytest.raises(StoreUnavailableError, match="locking session 's'"):
                async with store.lock("s"):
                    pass
            with pytest.raises(StoreUnavailableError):
                await store.delete("s")
            own_redis_server.start()  # an empty server on the same port: the same store object works again
            assert (await store.load("s")).turn_count == 0
            await store.save(full_state("s"))
            async with store.lock("s"):
                assert (await store.load("s")).turn_count == 7
            own_redis_server.stop()  # a restart while idle: the pooled connections are dead but unused
            own_redis_server.start()
            await store.save(full_state("s"))
            assert (await store.load("s")).turn_count == 7

    asyncio.run(main())


def test_redis_server_stopped_during_a_turn(own_redis_server, caplog):
    """The save fails with StoreUnavailableError; the failed unlock is logged, not raised over it."""

    async def main():
        async with RedisSessionStore(own_redis_server.url, socket_timeout=1, lock_timeout_seconds=0.5) as store:
            with pytest.raises(StoreUnavailableError, match="saving"):
                async with store.lock("s"):
                    state = await store.load("s")
                    own_redis_server.stop()
                    await store.save(state)
            own_redis_server.start()
            async with store.lock("s"):
                await store.save(state)

    with caplog.at_level(logging.WARNING, logger="bot.sessions.redis"):
        asyncio.run(main())
    assert "unlocking session 's'" in caplog.text


def test_start_fails_clearly_when_nothing_listens():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens on it once closed

    async def main():
        store = RedisSessionStore(f"redis://alice:s3cret-pw@127.0.0.1:{port}/0", socket_timeout=0.5)
        with pytest.raises(StoreUnavailableError) as info:
            await store.start()
        message = str(info.value)
        assert f"redis://alice:***@127.0.0.1:{port}/0" in message
        assert "s3cret-pw" not in message
        assert "CSBOT_REDIS_URL" in message
        with pytest.raises(StoreUnavailableError):
            async with RedisSessionStore(f"redis://127.0.0.1:{port}/0", socket_timeout=0.5):
                pass

    asyncio.run(main())


def test_start_fails_when_the_server_never_answers():
    """A socket that accepts connections but never replies: the socket timeout bounds the wait."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]

        async def main():
            store = RedisSessionStore(f"redis://127.0.0.1:{port}/0?password=hush", socket_timeout=0.2)
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError) as info:
                await store.start()
            assert time.monotonic() - started < 5
            assert "password=***" in str(info.value) and "hush" not in str(info.value)

        asyncio.run(main())


def test_mask_url():
    assert mask_url("redis://:pw@host:6379/0") == "redis://:***@host:6379/0"
    assert mask_url("rediss://user:p%40ss@host/1") == "rediss://user:***@host/1"
    assert mask_url("redis://user@host/0") == "redis://user@host/0"
    assert mask_url("unix:///tmp/r.sock?db=1&password=x") == "unix:///tmp/r.sock?db=1&password=***"
    assert mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert mask_url("redis://:p@ss@h:1?password=q&db=2") == "redis://:***@h:1?password=***&db=2"


def test_release_only_deletes_the_holders_own_lock(redis_url, caplog):
    """A's lock expires mid-turn and B takes it: A's release must leave B's lock alone."""

    async def main():
        raw = aioredis.Redis.from_url(redis_url, decode_responses=True)
        async with RedisSessionStore(redis_url, lock_timeout_seconds=0.2, lock_wait_seconds=0) as a, \
                RedisSessionStore(redis_url, lock_timeout_seconds=30, lock_wait_seconds=2) as b:
            b_holds, b_done = asyncio.Event(), asyncio.Event()

            async def turn_b():
                async with b.lock("s"):
                    b_holds.set()
                    await b_done.wait()

            async with a.lock("s"):
                token_a = await raw.get(lkey("s"))
                task = asyncio.create_task(turn_b())
                await asyncio.wait_for(b_holds.wait(), 5)  # only possible once A's lock expired
            token_b = await raw.get(lkey("s"))
            assert token_b is not None and token_b != token_a  # A's exit did not delete B's lock
            with pytest.raises(LockTimeoutError):
                async with a.lock("s"):  # so a third turn still finds the session locked
                    pass
            b_done.set()
            await task
            assert await raw.get(lkey("s")) is None  # B released its own lock
        await raw.aclose()

    with caplog.at_level(logging.WARNING, logger="bot.sessions.redis"):
        asyncio.run(main())
    assert "outlived its lock" in caplog.text


def test_a_crashed_holders_lock_expires(redis_url):
    async def main():
        async with RedisSessionStore(redis_url, lock_timeout_seconds=0.3, lock_wait_seconds=5) as store:
            abandoned = store.lock("s")
            await abandoned.__aenter__()  # taken and never released, like a worker that died
            started = time.monotonic()
            async with store.lock("s"):
                assert time.monotonic() - started >= 0.2

    asyncio.run(main())


def test_redis_transaction_takes_two_round_trips(redis_url):
    """Lock and load in one script, save and unlock in another: what keeps a turn's store cost low."""

    async def main():
        async with RedisSessionStore(redis_url) as store:
            async with store.transaction("warm-up"):  # the first use loads the scripts into the server
                pass
            await store.save(full_state("s"))
            sent: list[tuple] = []
            original = store._redis.execute_command

            async def counting(*args, **kwargs):
                sent.append(args)
                return await original(*args, **kwargs)

            store._redis.execute_command = counting
            async with store.transaction("s") as state:
                assert state.turn_count == 7 and state.slots == full_state("s").slots
                state.turn_count += 1
            store._redis.execute_command = original
            assert [a[0] for a in sent] == ["EVALSHA", "EVALSHA"]
            assert (await store.load("s")).turn_count == 8
            raw = aioredis.Redis.from_url(redis_url)
            assert not await raw.exists(lkey("s"))
            assert 0 < await raw.ttl(skey("s")) <= store.ttl_seconds
            await raw.aclose()

    asyncio.run(main())


def test_redis_transaction_never_overwrites_a_newer_turn(redis_url, caplog):
    """A turn outlives its lock: if another turn took the session, its save is refused (fenced by the
    token); if nobody did, it is saved with a warning."""

    async def main():
        async with RedisSessionStore(redis_url, lock_timeout_seconds=0.2, lock_wait_seconds=0) as a, \
                RedisSessionStore(redis_url, lock_timeout_seconds=30, lock_wait_seconds=2) as b:
            b_holds, b_done = asyncio.Event(), asyncio.Event()

            async def turn_b():
                async with b.transaction("s") as state:
                    state.slots["by"] = "b"
                    b_holds.set()
                    await b_done.wait()

            with pytest.raises(LockTimeoutError, match="not saved"):
                async with a.transaction("s") as state:
                    state.slots["by"] = "a"
                    task = asyncio.create_task(turn_b())
                    await asyncio.wait_for(b_holds.wait(), 5)  # only possible once A's lock expired
            b_done.set()
            await task
            assert (await a.load("s")).slots == {"by": "b"}  # B's turn stands
            async with a.transaction("s") as state:
                state.slots["by"] = "slow a"
                await asyncio.sleep(0.35)  # the lock expires, nobody takes the session
            assert (await a.load("s")).slots == {"by": "slow a"}

    with caplog.at_level(logging.WARNING, logger="bot.sessions.redis"):
        asyncio.run(main())
    assert "no other turn took it" in caplog.text


def test_redis_transaction_on_a_corrupt_state_starts_over_and_releases_the_lock(redis_url):
    async def main():
        raw = aioredis.Redis.from_url(redis_url)
        await raw.set(skey("bad"), b"[1, 2]")
        async with RedisSessionStore(redis_url, lock_wait_seconds=0.2) as store:
            with pytest.raises(StoreError, match=re.escape(skey("bad"))):  # load reports it
                await store.load("bad")
            async with store.transaction("bad") as state:  # a turn starts over
                assert state.turn_count == 0 and skey("bad") in state.reset_reason
                assert not state.reset_reason.startswith("{")
                state.turn_count = 1
            assert not await raw.exists(lkey("bad"))
            assert (await store.load("bad")).turn_count == 1
        await raw.aclose()

    asyncio.run(main())


# -- configuration and factory ------------------------------------------------------------------


def test_create_store_by_name(redis_url):
    assert type(create_store(SessionsConfig())) is MemorySessionStore
    memory = create_store(SessionsConfig(ttl_seconds=60, lock_timeout_seconds=3))
    assert (memory.ttl_seconds, memory.lock_timeout_seconds) == (60, 3)
    store = create_store(SessionsConfig(store="redis", url=redis_url, namespace="n1", ttl_seconds=5,
                                        lock_wait_seconds=1.5))
    assert isinstance(store, RedisSessionStore)
    assert (store.url, store.namespace, store.ttl_seconds, store.lock_wait_seconds) == (redis_url, "n1", 5, 1.5)

    async def main():
        async with store:
            await store.save(SessionState("x"))
            assert (await store.load("x")).session_id == "x"

    asyncio.run(main())


@pytest.mark.parametrize("path", ["sessions_helpers:TaggedStore", "sessions_helpers.TaggedStore"])
def test_create_store_by_dotted_path(path):
    store = create_store(SessionsConfig(store=path, ttl_seconds=42))
    assert isinstance(store, TaggedStore) and store.ttl_seconds == 42


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("mongo", "unknown"),
        ("no_such_module_xyz:Store", "cannot import"),
        ("no_such_package.module.Store", "cannot import"),
        ("sessions_helpers:Missing", "no attribute"),
        ("sessions_helpers:NotAStore", "not a subclass of bot.sessions.base.SessionStore"),
        ("sessions_helpers:turn", "not a subclass of bot.sessions.base.SessionStore"),
        ("sessions_helpers:HalfStore", "does not implement"),
    ],
)
def test_create_store_rejects(value, why):
    with pytest.raises(ConfigError) as info:
        create_store(SessionsConfig(store=value))
    assert repr(value) in str(info.value) and why in str(info.value) and "sessions.store" in str(info.value)


def test_bad_redis_url_is_a_config_error():
    with pytest.raises(ConfigError, match=r"http://u:\*\*\*@"):
        create_store(SessionsConfig(store="redis", url="http://u:pw@example.com/"))  # not a redis scheme
    with pytest.raises(ConfigError, match=r"http://u:\*\*\*@"):
        RedisSessionStore("http://u:pw@example.com/")


def test_importing_bot_sessions_does_not_import_redis():
    code = "import sys, bot.sessions; assert 'redis' not in sys.modules, 'redis was imported'"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
