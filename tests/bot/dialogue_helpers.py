"""Helpers for tests/bot/test_dialogue.py: actions and hooks a domain can point at by dotted path
(``dialogue_helpers:slow_action``; pytest puts tests/bot on ``sys.path``), and, run as a script, one OS
process sending concurrent turns to one session through a DialogueManager on a shared Redis.

Script use: ``python tests/bot/dialogue_helpers.py URL SESSION_ID PREFIX COUNT`` checks in on a Redis
barrier key, waits until two processes have, then sends COUNT greetings ``hello PREFIX<i>`` at once.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BARRIER = "test:dialogue-barrier"


async def slow_action(slots: dict[str, Any], session: Any) -> dict[str, Any]:
    """An action that outlives any sensible action timeout."""
    await asyncio.sleep(30)
    return {}


async def broken_hook(session: Any, reason: str) -> None:
    """A hand-over hook whose agents' queue is down."""
    raise RuntimeError("the agents' queue is down")


async def _process_main(url: str, session_id: str, prefix: str, count: int) -> int:
    # the understander the tests use (run as a script, tests/bot is sys.path[0])
    from test_dialogue import KeywordUnderstander

    from bot.dialogue import DialogueManager
    from bot.domain import load_domain
    from bot.messages import Message
    from bot.sessions import RedisSessionStore

    store = RedisSessionStore(url, lock_wait_seconds=60, lock_timeout_seconds=30)
    try:
        manager = DialogueManager(load_domain(REPO / "configs" / "demo" / "domain.yml"), KeywordUnderstander(), store)
        await store._redis.incr(BARRIER)
        for _ in range(3000):  # both processes send their turns together, or the test proves nothing
            if int(await store._redis.get(BARRIER) or 0) >= 2:
                break
            await asyncio.sleep(0.005)
        else:
            print("the other process never checked in", file=sys.stderr)
            return 3
        replies = await asyncio.gather(
            *(manager.handle(Message(session_id, f"hello {prefix}{i}", "test")) for i in range(count))
        )
    finally:
        await store.close()
    bad = [r.source for r in replies if r.source != "template"]
    if bad:
        print(f"unexpected reply sources: {bad}", file=sys.stderr)
        return 1
    print("done", count)
    return 0


if __name__ == "__main__":
    url, session_id, prefix, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    raise SystemExit(asyncio.run(_process_main(url, session_id, prefix, count)))
