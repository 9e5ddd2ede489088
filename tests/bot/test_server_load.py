"""The load test of issue 13: ``csbot serve --workers 2`` (a subprocess, the trained demo model, the Redis store)
takes 200 concurrent conversations of 10 turns each through the REST channel with zero errors, and every
conversation's turn count in Redis is exactly 10.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time

import aiohttp
import pytest
from conftest import REPO

pytestmark = pytest.mark.slow

CONVERSATIONS, TURNS = 200, 10
#: What the customers say, turn after turn (the demo shop's intents, slots, retrieval and chit-chat).
SCRIPT = ["hello", "where is my order", "it is 48213", "thanks", "how do I return a pair of shoes",
          "do you ship to Canada", "I want to change my delivery address", "what are your opening hours",
          "ok great", "bye"]


def test_two_workers_answer_200_conversations_of_10_turns_without_an_error(demo_models, redis_url, tmp_path):
    from bot.sessions.redis import RedisSessionStore

    model, index = demo_models
    config = tmp_path / "bot.yml"
    config.write_text(json.dumps({
        "bot": {"model_dir": str(model), "index_dir": str(index)},
        "sessions": {"store": "redis", "url": redis_url, "namespace": "load"},
        "server": {"port": 0, "rate_limit_per_minute": 0},
        "channels": {"rest": {}},
    }))
    env = {**os.environ, "CSBOT_HOME": str(tmp_path)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    stderr = tmp_path / "stderr.txt"
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--config", str(config), "--workers", "2"],
                               stderr=stderr.open("w"), env=env, cwd=REPO,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        url = None
        while url is None and time.monotonic() < deadline and process.poll() is None:
            found = re.search(r"csbot serving on (http://\S+?)[ ,]", stderr.read_text())
            url = found.group(1) if found else None
            time.sleep(0.2)
        assert url, f"the server did not start: {stderr.read_text()}"

        async def conversation(http: aiohttp.ClientSession, i: int) -> list[str]:
            errors = []
            for text in SCRIPT[:TURNS]:
                async with http.post(f"{url}/webhooks/rest/webhook", json={"sender": f"c{i}", "message": text}) as resp:
                    body = await resp.json()
                    if resp.status != 200 or not body or not body[0].get("text"):
                        errors.append(f"c{i} {text!r}: {resp.status} {body}")
            return errors

        async def scenario():
            timeout = aiohttp.ClientTimeout(total=120)
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as http:
                errors = await asyncio.gather(*(conversation(http, i) for i in range(CONVERSATIONS)))
            store = RedisSessionStore(redis_url, namespace="load")
            await store.start()
            try:
                counts = {i: (await store.load(f"rest:c{i}")).turn_count for i in range(CONVERSATIONS)}
            finally:
                await store.close()
            return [error for errs in errors for error in errs], counts

        errors, counts = asyncio.run(scenario())
        assert errors == []
        assert {i: count for i, count in counts.items() if count != TURNS} == {}
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, stderr.read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # the workers too
            process.wait(10)
