"""``csbot train``: ``--no-progress`` prints one line per epoch and the end of training; an ``--epochs`` that
makes fewer steps than ``training.min_steps`` is warned about."""

from __future__ import annotations

import json
import re

from conftest import TINY_EXAMPLES

from bot.cli import main
from bot.cli.train import few_steps_warning


def _train(capsys, tmp_path, encoder, *extra):
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps(d) for d in TINY_EXAMPLES * 3) + "\n")
    code = main(["train", "--data", str(data), "--base-model", str(encoder), "--dev-split", "0.3", "--device", "cpu",
                 "--out", str(tmp_path / "model"), *extra])
    out = capsys.readouterr()
    return code, out.err


def test_no_progress_prints_a_line_per_epoch(capsys, tmp_path, tiny_encoder_dir):
    code, err = _train(capsys, tmp_path, tiny_encoder_dir, "--epochs", "3", "--no-progress")
    assert code == 0, err
    epochs = [line for line in err.splitlines() if re.match(r"epoch \d+ · loss \d", line)]
    ran = json.loads((tmp_path / "model" / "metrics.json").read_text())["training"]["epochs_run"]
    assert len(epochs) == ran >= 1
    assert "dev " in epochs[0] and epochs[0].endswith("s")
    assert f"after {ran} epochs" in " ".join(err.split())


def test_epochs_below_min_steps_are_warned_about(capsys, tmp_path, tiny_encoder_dir):
    code, err = _train(capsys, tmp_path, tiny_encoder_dir, "--epochs", "2", "--no-progress")
    assert code == 0, err
    text = " ".join(err.split())
    assert "warning: --epochs 2 trains for only" in text and "training.min_steps (1000)" in text


def test_the_warning_names_the_epochs_min_steps_would_train():
    assert few_steps_warning(None, 100, 32, 1000) is None  # no --epochs: min_steps raises the epochs itself
    assert few_steps_warning(300, 100, 32, 1000) is None  # 1200 steps
    assert few_steps_warning(5, 100, 32, 0) is None
    warning = few_steps_warning(5, 100, 32, 1000)  # 4 steps an epoch: 20 steps
    assert "only 20 optimiser steps on 100 examples" in warning and "250 epochs" in warning
