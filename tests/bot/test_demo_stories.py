"""The demo shop end to end: pass every conversation story, and chat through the terminal channel with piped
input (what ``csbot chat`` runs with nothing configured).

The ``demo_models`` fixture (tests/conftest.py) trains the demo model and builds its index once per test
session, so each test here runs alone or in any order.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

import pytest
from conftest import REPO

from bot.cli import main


@pytest.mark.slow
def test_the_demo_passes_its_stories(demo_models, capsys, monkeypatch):
    import csbot.settings

    model, index = demo_models
    read = []
    monkeypatch.setattr(csbot.settings, "read_config_file",
                        lambda path, original=csbot.settings.read_config_file: read.append(path) or original(path))
    code = main(["test", "stories", str(REPO / "configs" / "demo" / "stories"), "--model", str(model),
                 "--index", str(index), "--quiet"])
    out = capsys.readouterr().out
    assert read == [REPO / "configs" / "default.yaml"]  # the configuration is read once for the whole command
    assert (model / "csbot-model.json").is_file() and (index / "csbot-index.json").is_file()
    assert code == 0, out
    passed, total = out.strip().splitlines()[-1].split()[0].split("/")
    assert passed == total and int(total) >= 25, out


def _demo_config(demo_models, tmp_path):
    """A config file for the demo bot on the built models, logging transcripts to ``tmp_path/t.jsonl``."""
    model, index = demo_models
    config = tmp_path / "c.yaml"
    config.write_text(f"bot:\n  domain: {REPO / 'configs/demo/domain.yml'}\n  model_dir: {model}\n"
                      f"  index_dir: {index}\ntranscripts:\n  path: {tmp_path / 't.jsonl'}\n")
    return config


def _chat(args: list[str], lines: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", "chat", *args], input=lines, capture_output=True,
                          text=True, timeout=300, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)


@pytest.mark.slow
def test_chat_reads_piped_input_line_by_line(demo_models, tmp_path):
    config = _demo_config(demo_models, tmp_path)
    lines = "where is my order 48213\n/debug\ncan i pay with paypal\n/reset\n/help\n/quit\nnever reached\n"
    done = _chat(["--config", str(config)], lines)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "48213" in out and "on its way" in out
    assert "debug on" in out and "intent payment_methods" in out and "PayPal" in out
    assert re.search(r"\(new conversation: session [^)]+\)", out) and "/debug" in out  # /help lists the commands
    assert "never reached" not in out
    assert len((tmp_path / "t.jsonl").read_text().splitlines()) == 2  # two turns, transcribed


@pytest.mark.slow
def test_chat_with_redis_continues_a_conversation_across_runs(demo_models, tmp_path, redis_url):
    """``--redis`` keeps the session in a real Redis: a second run with the same ``--session`` answers the
    slot question the first run asked, and both runs' turns are on the transcript stream."""
    import redis

    config = _demo_config(demo_models, tmp_path)
    common = ["--config", str(config), "--redis", redis_url, "--session", "shopper-1"]
    first = _chat(common, "where is my order\n")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "order number" in first.stdout
    second = _chat(common, "48213\n")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "48213" in second.stdout and "on its way" in second.stdout  # the form was picked up from Redis

    from bot.sessions.redis import slot_tag

    key = f"csbot:session:{{{slot_tag('shopper-1')}}}:shopper-1"
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        state = json.loads(client.get(key))
        assert state["turn_count"] == 2
        assert 0 < client.ttl(key) <= 86400
        assert client.xlen("csbot:transcripts") == 2
        assert client.keys("csbot:lock:*") == []  # both turns released their locks
    finally:
        client.close()


@pytest.mark.slow
def test_chat_with_a_redis_that_does_not_answer_fails_clearly(demo_models, tmp_path):
    model, index = demo_models
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    done = _chat(["--model", str(model), "--index", str(index), "--no-transcripts",
                  "--redis", f"redis://127.0.0.1:{port}/0"], "hi\n")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert f"127.0.0.1:{port}" in done.stderr and "redis-server" in done.stderr


@pytest.mark.slow
def test_prepare_finds_the_models_ready_and_leaves_them_alone(demo_models, tmp_path, capsys):
    """``csbot prepare`` on a config whose model and index are up to date trains and builds nothing."""
    model, index = demo_models
    before = {path: path.stat().st_mtime_ns for path in (model / "csbot-model.json", index / "csbot-index.json")}
    code = main(["prepare", "--config", str(_demo_config(demo_models, tmp_path))])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert out.out.strip() == f"ready: model {model}, index {index}"
    assert "training" not in out.err and "indexing" not in out.err
    assert {path: path.stat().st_mtime_ns for path in before} == before


def test_prepare_trains_what_is_missing_and_serve_then_finds_it(tmp_path, capsys):
    """``csbot serve`` refuses a config without models and names ``csbot prepare``; prepare fails clearly on
    data it cannot read, keeping nothing half-made."""
    config = tmp_path / "c.yaml"
    config.write_text(f"bot:\n  nlu_data: [{tmp_path / 'missing.yml'}]\n  model_dir: {tmp_path / 'm'}\n"
                      f"  index_dir: {tmp_path / 'i'}\n", encoding="utf-8")
    assert main(["serve", "--config", str(config)]) != 0
    assert "csbot prepare" in capsys.readouterr().err
    assert main(["prepare", "--config", str(config)]) != 0
    assert "missing.yml" in capsys.readouterr().err
    assert not (tmp_path / "m" / "csbot-model.json").exists()
