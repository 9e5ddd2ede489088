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
