"""Shared fixtures: the packaged tokenizer, a tiny random BERT encoder and a tiny saved NLU model.

The tiny models share the real tokenizer (so offsets are exercised for real) but have a 2-layer,
32-wide encoder, so tests that only need *a* model run in milliseconds. Tests marked ``slow``
load the real default encoder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]

# Hypothesis (tests/properties/): the same budget everywhere, no example database written into the tree,
# no deadline (2 shared cores make timings noisy). $CSBOT_HYPOTHESIS_EXAMPLES raises the budget locally.
settings.register_profile(
    "csbot",
    max_examples=int(os.environ.get("CSBOT_HYPOTHESIS_EXAMPLES", "100")),
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("csbot")

#: The shared public data sets (SNIPS, ATIS, BANKING77, CLINC150, NLU++), found only through this variable
#: (``.ci/run`` sets it); tests that need them take the ``datasets_dir`` fixture and are skipped without it.
DATASETS_ENV = "CSBOT_DATASETS"
DATASETS = Path(os.environ[DATASETS_ENV]) if os.environ.get(DATASETS_ENV) else None


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """The folder of the shared data sets; skips the test, saying why, when it is not available."""
    if DATASETS is None:
        pytest.skip(f"{DATASETS_ENV} is not set; point it at the shared data sets folder to run this test")
    if not DATASETS.is_dir():
        pytest.skip(f"{DATASETS_ENV}={DATASETS} does not exist")
    return DATASETS


@pytest.fixture(scope="session")
def default_tokenizer():
    from transformers import AutoTokenizer

    from nlu.encoders import packaged_default_encoder

    return AutoTokenizer.from_pretrained(str(packaged_default_encoder()))


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory, default_tokenizer) -> Path:
    """A randomly initialised 2-layer BERT with the real vocabulary, saved like a Hugging Face model."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=default_tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    path = tmp_path_factory.mktemp("tiny-encoder")
    BertModel(config).save_pretrained(str(path))
    default_tokenizer.save_pretrained(str(path))
    return path


TINY_EXAMPLES = [
    {"text": "where is my order 48213", "intent": "track_order",
     "entities": [{"start": 18, "end": 23, "entity": "order_id", "value": "48213"}]},
    {"text": "track order 99120 please", "intent": "track_order",
     "entities": [{"start": 12, "end": 17, "entity": "order_id", "value": "99120"}]},
    {"text": "cancel order 55555", "intent": "cancel_order",
     "entities": [{"start": 13, "end": 18, "entity": "order_id", "value": "55555"}]},
    {"text": "please cancel my order", "intent": "cancel_order", "entities": []},
    {"text": "hello there", "intent": "greet", "entities": []},
    {"text": "hi!", "intent": "greet", "entities": []},
]


@pytest.fixture(scope="session")
def tiny_examples():
    from nlu.schema import Example

    return [Example.from_dict(d) for d in TINY_EXAMPLES]


def make_tiny_bundle(encoder_dir: Path, labels, seed: int = 0):
    import torch
    from transformers import AutoModel, AutoTokenizer

    from nlu.artefact import ModelBundle
    from nlu.calibration import Calibration
    from nlu.model import HeadConfig, JointIntentSlotModel

    torch.manual_seed(seed)
    heads = HeadConfig(num_intents=labels.num_intents, num_tags=labels.num_tags, multi_label=labels.multi_label)
    model = JointIntentSlotModel(AutoModel.from_pretrained(str(encoder_dir)), heads).eval()
    return ModelBundle(
        model=model,
        tokenizer=AutoTokenizer.from_pretrained(str(encoder_dir)),
        labels=labels,
        calibration=Calibration(temperature=1.0, oos_threshold=0.0),
        base_model=str(encoder_dir),
        fingerprint="test",
    )


@pytest.fixture(scope="session")
def tiny_labels(tiny_examples):
    from nlu.labels import LabelMaps

    return LabelMaps.from_examples(tiny_examples)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_encoder_dir, tiny_labels) -> Path:
    """A saved (untrained) tiny NLU model artefact."""
    from nlu.artefact import save_bundle

    return save_bundle(make_tiny_bundle(tiny_encoder_dir, tiny_labels), tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_bundle_factory(tiny_encoder_dir):
    """Build an in-memory tiny model bundle for any label maps."""
    return lambda labels, seed=0: make_tiny_bundle(tiny_encoder_dir, labels, seed)


# -- a real redis-server on a free loopback port -------------------------------------------------


class RedisServer:
    """A ``redis-server`` child process on 127.0.0.1; ``stop()`` and ``start()`` simulate an outage."""

    def __init__(self, directory: Path) -> None:
        import shutil

        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: apt-get install -y redis-server (the README's test command does it)")
        self.binary, self.directory = binary, directory
        self.port = _free_port()
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import subprocess
        import time

        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {self.process.returncode}")
            if self.ping():
                return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer on port {self.port} within 10 s")

    def ping(self) -> bool:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def flush(self) -> None:
        import socket

        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            sock.recv(16)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One real redis-server for the test session (flushed per test by ``redis_url``)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server) -> str:
    """The URL of a running, empty Redis; restarted first if a test stopped it."""
    if not redis_server.ping():
        redis_server.start()
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def own_redis_server(tmp_path):
    """A redis-server of this test's own, which the test may stop and restart (outage tests)."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


# -- the demo shop's trained model and index, shared by every test that chats with it --------------


@pytest.fixture(scope="session")
def demo_models(tmp_path_factory):
    """The demo's NLU model and Q&A index, trained and built once per test session by ``prepare_models``
    (what ``csbot chat`` and ``csbot test stories`` run first); a few minutes on 2 cores."""
    from csbot.settings import load_config
    from training.prepare import prepare_models

    root = tmp_path_factory.mktemp("demo")
    model, index = root / "model", root / "index"
    said: list[str] = []
    prepare_models(load_config(None, {"bot.model_dir": str(model), "bot.index_dir": str(index)}),
                   show_progress=False, say=said.append)
    assert any("training one" in line for line in said) and any("indexing" in line for line in said), said
    return model, index


# -- a stand-in for the Telegram Bot API --------------------------------------------------------------


class TelegramStandIn:
    """A small Bot API on a free loopback port, built from Telegram's public documentation.

    ``POST /bot{token}/{method}`` takes JSON (or form) parameters and answers ``{"ok": true, "result": ...}``;
    an unknown token is a 401 and an unknown method a 404, in Telegram's error shape. Every call that
    reached it is in :attr:`calls` as ``(method, params)`` (failed ones too); :meth:`fail_next` makes the
    next calls fail with a 500, or a 429 whose ``parameters.retry_after`` says how long to wait. It runs on
    its own event loop in a thread, so both async tests and a CLI command (which runs its own loop) reach it.
    """

    METHODS = ("sendMessage", "answerCallbackQuery", "setWebhook")

    def __init__(self, token: str = "123456:TEST-token") -> None:
        import threading

        self.token = token
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.calls: list[tuple[str, dict]] = []
        self.failures: list[tuple[int, float | None]] = []
        self._lock = threading.Lock()
        self._loop = None
        self._runner = None
        self._thread = None
        self._message_ids = 0

    def fail_next(self, times: int, status: int = 500, retry_after: float | None = None) -> None:
        """The next ``times`` calls (any method) fail with ``status`` (and ``retry_after`` on a 429)."""
        with self._lock:
            self.failures.extend([(status, retry_after)] * times)

    def sent(self, method: str = "sendMessage") -> list[dict]:
        """The parameters of every call of ``method`` that succeeded."""
        with self._lock:
            return [params for name, params in self.calls if name == method and not params.get("_failed")]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        """The successful calls of ``method`` once there are at least ``count`` (fails after ``timeout``)."""
        import asyncio
        import time

        deadline = time.monotonic() + timeout
        while len(self.sent(method)) < count:
            assert time.monotonic() < deadline, f"{method}: {len(self.sent(method))} of {count} calls in {timeout}s"
            await asyncio.sleep(0.01)
        return self.sent(method)

    async def _handle(self, request):
        from aiohttp import web

        try:
            params = await request.json() if request.content_type == "application/json" else dict(await request.post())
        except ValueError:
            params = None
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        if not isinstance(params, dict):
            return web.json_response({"ok": False, "error_code": 400, "description": "Bad Request: bad body"}, status=400)
        with self._lock:
            failure = self.failures.pop(0) if self.failures else None
            self.calls.append((method, {**params, "_failed": True} if failure else params))
            if failure is None and method == "sendMessage":
                self._message_ids += 1
                message_id = self._message_ids
        if failure is not None:
            status, retry_after = failure
            body = {"ok": False, "error_code": status, "description": {500: "Internal Server Error"}.get(status, "Bad Request")}
            if status == 429:
                body["description"] = f"Too Many Requests: retry after {retry_after}"
                body["parameters"] = {"retry_after": retry_after}
            return web.json_response(body, status=status)
        if method not in self.METHODS:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        if method == "sendMessage":
            if not params.get("chat_id") or not params.get("text"):
                return web.json_response({"ok": False, "error_code": 400,
                                          "description": "Bad Request: message text is empty"}, status=400)
            for row in (params.get("reply_markup") or {}).get("inline_keyboard", []):
                for button in row:
                    if len(button.get("callback_data", "").encode()) > 64:
                        return web.json_response({"ok": False, "error_code": 400,
                                                  "description": "Bad Request: BUTTON_DATA_INVALID"}, status=400)
            chat_id = params["chat_id"]
            result = {"message_id": message_id, "date": 0, "text": params["text"],
                      "chat": {"id": chat_id, "type": "private"}}
            return web.json_response({"ok": True, "result": result})
        return web.json_response({"ok": True, "result": True})

    def start(self) -> None:
        import asyncio
        import threading

        from aiohttp import web

        started = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/bot{token}/{method}", self._handle)
            self._runner = web.AppRunner(app)
            self._loop.run_until_complete(self._runner.setup())
            self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
            started.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="telegram-stand-in", daemon=True)
        self._thread.start()
        assert started.wait(10), "the Telegram stand-in did not start"

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


@pytest.fixture
def telegram_api():
    """A running :class:`TelegramStandIn` (Bot API stand-in) of this test's own."""
    server = TelegramStandIn()
    server.start()
    yield server
    server.stop()


# -- a stand-in for Slack's Web API on a free loopback port ------------------------------------------


class SlackAPIStandIn:
    """``chat.postMessage`` as Slack's Web API documents it, served from its own thread and event loop.

    A call needs ``Authorization: Bearer {token}`` and a JSON body with ``channel`` and ``text`` or
    ``blocks``; it answers ``{"ok": true, "channel", "ts", "message"}``, or ``{"ok": false, "error"}``
    (HTTP 200) for a bad token or body. ``fail_next(n)`` answers the next ``n`` calls with HTTP 500,
    ``rate_limit_next(n, retry_after)`` with 429, ``Retry-After`` and ``{"ok": false, "error": "ratelimited"}``.
    ``attempts`` records every request (time, status), ``calls`` the JSON of every accepted post.
    """

    def __init__(self, token: str = "xoxb-test-token") -> None:
        import threading

        self.token = token
        self.calls: list[dict] = []
        self.attempts: list[tuple[float, int]] = []
        self._failures: list[tuple[int, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop = None
        self._runner = None
        self.port = 0
        self._thread = threading.Thread(target=self._serve, name="slack-api-stand-in", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._lock:
            self._failures += [(status, {})] * count

    def rate_limit_next(self, count: int, retry_after: int = 1) -> None:
        with self._lock:
            self._failures += [(429, {"Retry-After": str(retry_after)})] * count

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.attempts.clear()
            self._failures.clear()

    async def wait_for_calls(self, count: int, timeout: float = 10.0) -> list[dict]:
        """The accepted calls once there are at least ``count`` (polled from the caller's event loop)."""
        import asyncio
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.calls) >= count:
                    return list(self.calls)
            await asyncio.sleep(0.01)
        raise AssertionError(f"expected {count} chat.postMessage calls within {timeout}s, got {self.calls}")

    async def _post_message(self, request):
        import json
        import time

        from aiohttp import web

        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
            status = failure[0] if failure else 200
            self.attempts.append((time.monotonic(), status))
        if failure is not None:
            error = "ratelimited" if status == 429 else "internal_error"
            return web.json_response({"ok": False, "error": error}, status=status, headers=failure[1])
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.json_response({"ok": False, "error": "invalid_json"})
        if not isinstance(body, dict) or not body.get("channel"):
            return web.json_response({"ok": False, "error": "channel_not_found"})
        if not body.get("text") and not body.get("blocks"):
            return web.json_response({"ok": False, "error": "no_text"})
        ts = f"{time.time():.6f}"
        with self._lock:
            self.calls.append(body)
        message = {"type": "message", "text": body.get("text", ""), "ts": ts, "bot_id": "B0STANDIN"}
        if body.get("thread_ts"):
            message["thread_ts"] = body["thread_ts"]
        return web.json_response({"ok": True, "channel": body["channel"], "ts": ts, "message": message})

    def _serve(self) -> None:
        import asyncio

        from aiohttp import web

        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application()
        app.router.add_post("/api/chat.postMessage", self._post_message)
        self._runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.port = self._runner.addresses[0][1]
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the Slack API stand-in did not start within 10 s")

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


@pytest.fixture
def slack_api():
    """A running Slack Web API stand-in (``chat.postMessage``) of this test's own."""
    server = SlackAPIStandIn()
    server.start()
    yield server
    server.stop()


# -- the webhook server (csbot serve's aiohttp application) on loopback ----------------------------


@pytest.fixture
def loopback_server():
    """``async with loopback_server(web_app) as base_url:`` serves an aiohttp application on a free loopback
    port, reached through real sockets (``http://127.0.0.1:PORT``); closed, channels stopped, on leaving.
    Use it inside the test's own event loop (``asyncio.run``)."""
    from contextlib import asynccontextmanager

    from aiohttp.test_utils import TestServer

    @asynccontextmanager
    async def serve(web_app):
        server = TestServer(web_app, host="127.0.0.1")
        await server.start_server()
        try:
            yield f"http://127.0.0.1:{server.port}"
        finally:
            await server.close()

    return serve


# -- a real three-node Redis Cluster on loopback ----------------------------------------------------


class RedisClusterNode(RedisServer):
    """A ``redis-server --cluster-enabled yes`` child process on 127.0.0.1 (no persistence); its cluster bus
    gets a free port of its own (the default, port + 10000, may be taken or past 65535)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.bus_port = _free_port()

    def start(self) -> None:
        import subprocess
        import time

        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), "--protected-mode", "no", "--cluster-enabled", "yes",
             "--cluster-config-file", f"nodes-{self.port}.conf", "--cluster-node-timeout", "5000",
             "--cluster-port", str(self.bus_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.ping():
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server (cluster node) exited with code {self.process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server (cluster node) did not answer on port {self.port} within 10 s")
            time.sleep(0.02)

    def command(self, *words: str) -> str:
        """One inline command's reply as text (enough for CLUSTER INFO, FLUSHALL, CLUSTER KEYSLOT)."""
        import subprocess

        return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *words],
                              capture_output=True, text=True, timeout=10, check=True).stdout


class RedisClusterServers:
    """Three :class:`RedisClusterNode` primaries (no replicas) joined into one cluster that covers every slot.

    ``url`` lists every node (``redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/``), ``seed_url`` names
    one (``redis://127.0.0.1:P1/0?cluster=true``); ``ports`` are the nodes' ports.
    """

    def __init__(self, directory: Path, size: int = 3) -> None:
        self.nodes = []
        for i in range(size):
            (directory / f"node{i}").mkdir()
            self.nodes.append(RedisClusterNode(directory / f"node{i}"))

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports) + "/"

    @property
    def seed_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0?cluster=true"

    def start(self) -> None:
        import subprocess
        import time

        for node in self.nodes:
            node.start()
        subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports),
                        "--cluster-replicas", "0", "--cluster-yes"],
                       capture_output=True, text=True, timeout=60, check=True)
        deadline = time.monotonic() + 30
        while not all(self._ready(node) for node in self.nodes):
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not reach cluster_state:ok within 30 s: "
                                   + " | ".join(node.command("CLUSTER", "INFO")[:200] for node in self.nodes))
            time.sleep(0.05)

    def _ready(self, node: RedisClusterNode) -> bool:
        info = node.command("CLUSTER", "INFO")
        return "cluster_state:ok" in info and f"cluster_known_nodes:{len(self.nodes)}" in info

    def keyslot(self, key: str) -> int:
        return int(self.nodes[0].command("CLUSTER", "KEYSLOT", key).strip())

    def flush(self) -> None:
        for node in self.nodes:
            node.flush()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    """A real three-node Redis Cluster on loopback for the test session (flushed per test by
    ``redis_cluster_url``); like ``redis_server`` it needs ``redis-server`` and ``redis-cli`` installed."""
    cluster = RedisClusterServers(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_cluster_url(redis_cluster) -> str:
    """The ``redis+cluster://`` URL of the running cluster, every node flushed first."""
    redis_cluster.flush()
    return redis_cluster.url


# -- a stand-in for a helpdesk receiving hand-over notifications (the outgoing hand-over webhook) ----------


class HelpdeskStandIn:
    """``POST /hooks/csbot`` on a free loopback port, in its own thread and event loop.

    Every request is kept in :attr:`received` as ``(status answered, headers, raw body)``; :meth:`answer_next`
    scripts the next answers (status and headers, e.g. a 500, or a 429 with ``Retry-After``); afterwards it
    answers 200. :meth:`delivered` gives the bodies it accepted (2xx).
    """

    def __init__(self) -> None:
        import threading

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/csbot"
        self.received: list[tuple[int, dict, bytes]] = []
        self.script: list[tuple[int, dict]] = []
        self._lock = threading.Lock()
        self._loop = None
        self._thread = None

    def answer_next(self, status: int, headers: dict | None = None, times: int = 1) -> None:
        with self._lock:
            self.script.extend([(status, dict(headers or {}))] * times)

    def delivered(self) -> list[bytes]:
        with self._lock:
            return [body for status, _, body in self.received if 200 <= status < 300]

    async def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[bytes]:
        """The accepted bodies once there are at least ``count`` (fails after ``timeout``)."""
        import asyncio
        import time

        deadline = time.monotonic() + timeout
        while len(self.delivered()) < count:
            assert time.monotonic() < deadline, f"helpdesk: {len(self.delivered())} of {count} deliveries in {timeout}s"
            await asyncio.sleep(0.01)
        return self.delivered()

    async def _handle(self, request):
        from aiohttp import web

        body = await request.read()
        with self._lock:
            status, headers = self.script.pop(0) if self.script else (200, {})
            self.received.append((status, dict(request.headers), body))
        return web.json_response({"ok": 200 <= status < 300}, status=status, headers=headers)

    def start(self) -> None:
        import asyncio
        import threading

        from aiohttp import web

        started = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/hooks/csbot", self._handle)
            runner = web.AppRunner(app)
            self._loop.run_until_complete(runner.setup())
            self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
            started.set()
            self._loop.run_forever()
            self._loop.run_until_complete(runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="helpdesk-stand-in", daemon=True)
        self._thread.start()
        assert started.wait(10), "the helpdesk stand-in did not start"

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


@pytest.fixture
def helpdesk():
    """A running :class:`HelpdeskStandIn` of this test's own."""
    server = HelpdeskStandIn()
    server.start()
    yield server
    server.stop()
