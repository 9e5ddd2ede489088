"""``csbot chat`` checks the Redis session store before it trains: a clear error at once, no training started."""

from __future__ import annotations

import socket

from bot.cli import main


def test_chat_checks_redis_before_training(tmp_path, capsys, monkeypatch):
    import training.prepare

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    model, index = tmp_path / "model", tmp_path / "index"
    config = tmp_path / "c.yaml"
    config.write_text(f"bot:\n  model_dir: {model}\n  index_dir: {index}\n"
                      f"transcripts:\n  path: {tmp_path / 't.jsonl'}\n", encoding="utf-8")
    trained = []
    monkeypatch.setattr(training.prepare, "prepare_models", lambda *a, **k: trained.append(a))
    code = main(["chat", "--config", str(config), "--redis", f"redis://127.0.0.1:{port}/0"])
    err = capsys.readouterr().err
    assert code != 0
    assert f"127.0.0.1:{port}" in err and "redis-server" in err and "Traceback" not in err
    assert trained == [] and not model.exists() and not index.exists()


def test_chat_with_a_redis_that_answers_goes_on_to_prepare_the_models(tmp_path, capsys, monkeypatch, redis_url):
    import training.prepare

    class Prepared(Exception):
        pass

    def prepare(*args, **kwargs):
        raise Prepared

    monkeypatch.setattr(training.prepare, "prepare_models", prepare)
    config = tmp_path / "c.yaml"
    config.write_text(f"bot:\n  model_dir: {tmp_path / 'm'}\n  index_dir: {tmp_path / 'i'}\n", encoding="utf-8")
    code = main(["chat", "--config", str(config), "--redis", redis_url])
    assert code != 0 and "Prepared" in capsys.readouterr().err  # the check passed; preparing came next
