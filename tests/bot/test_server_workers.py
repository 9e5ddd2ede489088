"""``csbot serve --workers N`` over real sockets with a real redis-server: two spawned workers on one port,
metrics summed across them, every conversation's turn count exact in Redis, SIGTERM forwarded and the metrics
folder removed, a dead worker stopping the rest, and a second SIGTERM exiting at once with a turn blocked.

The servers run in a subprocess (``python -c`` calling :func:`serve` below) so the signals reach only them;
the workers build the keyword demo bot of test_dialogue (no NLU model) with the Redis session store.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from conftest import REPO
from test_dialogue import KeywordUnderstander

from bot.config import ServerConfig
from bot.server.workers import check_port, torch_threads_for
from csbot.errors import ConfigError

TESTS = Path(__file__).resolve().parent
WEBHOOK = "/webhooks/rest/webhook"


# -- what the subprocess runs --------------------------------------------------------------------------------


class SlowKeywords(KeywordUnderstander):
    """Keyword rules; a text starting with "block" waits a minute (a turn stuck in flight)."""

    async def parse(self, text):
        if text.startswith("block"):
            await asyncio.sleep(60)
        return await super().parse(text)


def keyword_redis_bot(config):
    """A worker's bot: the demo domain by keywords, sessions in the config's Redis (module-level: picklable)."""
    from bot.app import BotApp
    from bot.dialogue import DialogueManager
    from bot.domain import load_domain
    from bot.sessions.redis import RedisSessionStore

    pids = os.environ.get("CSBOT_TEST_PIDS")
    if pids:
        Path(pids, str(os.getpid())).write_text("")
    manager = DialogueManager(load_domain(REPO / "configs" / "demo" / "domain.yml"), SlowKeywords(),
                              RedisSessionStore.from_config(config.sessions))
    return BotApp.for_manager(manager, config)


def serve(config_path: str, workers: int) -> int:
    """Serve like ``csbot serve --workers N`` with the keyword bot; prints ``LISTENING <url>`` when ready."""
    import logging

    from bot.server import build_channels, run_server
    from bot.server.workers import run_workers
    from csbot.settings import load_config

    logging.basicConfig(level=logging.INFO)
    config = load_config(config_path)

    def listening(addresses: list[str]) -> None:
        print("LISTENING", addresses[0], flush=True)

    if workers == 1:  # the single-process path of `csbot serve`
        bot = keyword_redis_bot(config)
        asyncio.run(run_server(bot, build_channels(config.channels), config.server, on_listening=listening))
        return 0
    return run_workers(config, workers, config_path=config_path, factory=keyword_redis_bot, on_listening=listening,
                       say=lambda line: print(line, file=sys.stderr, flush=True))


class Server:
    """A :func:`serve` subprocess: its URL once listening, its output, its exit."""

    def __init__(self, tmp_path: Path, redis_url: str, workers: int, **server: object) -> None:
        config = tmp_path / "bot.yml"
        settings = {"port": 0, "rate_limit_per_minute": 0, **server}
        config.write_text(json.dumps({"sessions": {"store": "redis", "url": redis_url, "namespace": "wk"},
                                      "server": settings,
                                      "channels": {"rest": {}}}))
        self.tmp = tmp_path / "tmp"
        self.pids = tmp_path / "pids"
        self.tmp.mkdir()
        self.pids.mkdir()
        env = {**os.environ, "TMPDIR": str(self.tmp), "CSBOT_TEST_PIDS": str(self.pids), "CSBOT_HOME": str(tmp_path)}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        code = (f"import sys; sys.path[:0] = [{str(TESTS)!r}, {str(TESTS.parent)!r}]; "
                f"from test_server_workers import serve; sys.exit(serve({str(config)!r}, {workers}))")
        self.process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                        stderr=(tmp_path / "stderr.txt").open("w"), text=True, env=env, cwd=REPO)
        self.stderr_path = tmp_path / "stderr.txt"
        self.url = self._wait_listening(120)

    def _wait_listening(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if line.startswith("LISTENING"):
                return line.split()[1]
            if not line and self.process.poll() is not None:
                break
        self.kill()
        raise AssertionError(f"the server did not start: {self.stderr()}")

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the server did not exit within {timeout} s: {self.stderr()}") from None

    def worker_pids(self) -> list[int]:
        return sorted(int(path.name) for path in self.pids.iterdir())

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for pid in self.worker_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def start_server(tmp_path, redis_url):
    servers: list[Server] = []

    def start(workers: int, **server: object) -> Server:
        servers.append(Server(tmp_path, redis_url, workers, **server))
        return servers[-1]

    yield start
    for server in servers:
        server.kill()


async def post(http: aiohttp.ClientSession, url: str, sender: str, text: str) -> tuple[int, object]:
    async with http.post(f"{url}{WEBHOOK}", json={"sender": sender, "message": text}) as response:
        return response.status, await response.json()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


# -- unit: threads and the port ------------------------------------------------------------------------------


def test_torch_threads_share_out_the_cores_unless_set():
    assert torch_threads_for(ServerConfig(), 2, cores=8) == 4
    assert torch_threads_for(ServerConfig(), 3, cores=2) == 1
    assert torch_threads_for(ServerConfig(torch_threads=3), 2, cores=8) == 3


def test_a_port_in_use_is_a_clear_error_and_port_zero_is_resolved():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"server\.port: cannot listen on 127\.0\.0\.1:{port}"):
            check_port("127.0.0.1", port)
    assert check_port("127.0.0.1", 0) > 0


# -- two workers ---------------------------------------------------------------------------------------------


def test_two_workers_share_one_port_redis_and_their_metrics(start_server, redis_url):
    from bot.sessions.redis import RedisSessionStore

    server = start_server(2)
    pids = server.worker_pids()
    assert len(pids) == 2 and server.process.pid not in pids
    conversations, turns = 20, 3

    async def scenario():
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            for _ in range(turns):
                results = await asyncio.gather(*(post(http, server.url, f"u{i}", "hello") for i in range(conversations)))
                assert all(status == 200 and body for status, body in results), results
            async with http.get(f"{server.url}/metrics") as response:
                text = await response.text()
        store = RedisSessionStore(redis_url, namespace="wk")
        await store.start()
        try:
            counts = [(await store.load(f"rest:u{i}")).turn_count for i in range(conversations)]
        finally:
            await store.close()
        return text, counts

    text, counts = asyncio.run(scenario())
    lines = set(text.splitlines())
    assert f'csbot_http_requests_total{{channel="rest",status="200"}} {conversations * turns}.0' in lines, text
    assert f'csbot_turn_seconds_count{{channel="rest"}} {conversations * turns}.0' in lines
    assert counts == [turns] * conversations
    metrics_dirs = [path for path in server.tmp.iterdir() if path.name.startswith("csbot-metrics-")]
    assert len(metrics_dirs) == 1 and any(metrics_dirs[0].iterdir())

    server.signal(signal.SIGTERM)
    assert server.wait(60) == 0, server.stderr()
    assert not any(alive(pid) for pid in pids)
    assert not any(path.name.startswith("csbot-metrics-") for path in server.tmp.iterdir())  # removed


def test_a_worker_that_dies_is_reported_and_the_parent_exits_non_zero(start_server):
    server = start_server(2)
    dead, other = server.worker_pids()
    os.kill(dead, signal.SIGKILL)
    assert server.wait(60) == 1
    assert f"worker pid {dead} was killed by SIGKILL" in server.stderr()
    assert not alive(other)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_second_sigterm_exits_at_once_with_a_turn_blocked(start_server, workers):
    server = start_server(workers)

    async def scenario():
        async with aiohttp.ClientSession() as http:
            turn = asyncio.create_task(post(http, server.url, "stuck", "block until the end"))
            await asyncio.sleep(1.0)  # the turn is in the understander now
            server.signal(signal.SIGTERM)
            await asyncio.sleep(1.0)
            assert server.process.poll() is None  # still finishing the turn in flight
            started = time.monotonic()
            server.signal(signal.SIGTERM)
            code = await asyncio.to_thread(server.wait, 15)
            elapsed = time.monotonic() - started
            turn.cancel()
            return code, elapsed

    code, elapsed = asyncio.run(scenario())
    assert code == 128 + signal.SIGTERM and elapsed < 10, server.stderr()
    assert not any(alive(pid) for pid in server.worker_pids())
