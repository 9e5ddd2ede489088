"""Calibration on dev logits (training.calibrate) and the training display (training.progress), without a model."""

from __future__ import annotations

import logging

import numpy as np

from nlu.labels import LabelMaps
from nlu.schema import Example
from training.calibrate import calibrate, has_oos_examples
from training.config import TrainingConfig
from training.progress import TrainingProgress, epoch_line


def dev_set(seed=0, n=300):
    """Dev examples of intents a, b and oos with logits that mostly favour the right one."""
    rng = np.random.default_rng(seed)
    names = ["a", "b", "oos"]
    gold = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), gold] += 3.0
    logits[gold == 2, :2] -= 2.0  # out-of-scope texts excite the in-scope intents less
    examples = [Example(f"text {i}", names[g]) for i, g in enumerate(gold)]
    return examples, logits.astype(np.float32)


def test_without_out_of_scope_dev_data_the_configured_threshold_stays():
    examples, logits = dev_set()
    examples = [e for e in examples if e.intent != "oos"]
    logits = logits[: len(examples)]
    labels = LabelMaps.from_examples(examples)
    assert not has_oos_examples(examples, labels)
    result = calibrate(logits[:, :2], examples, labels, TrainingConfig(oos_threshold=0.3))
    assert result.threshold_source == "config" and result.oos_threshold == 0.3
    assert result.temperature > 0 and result.ece_after is not None


def test_with_out_of_scope_dev_data_a_score_and_threshold_are_chosen():
    examples, logits = dev_set()
    labels = LabelMaps.from_examples(examples)
    assert labels.oos_label == "oos" and has_oos_examples(examples, labels)
    result = calibrate(logits, examples, labels, TrainingConfig(oos_score="auto", oos_max_in_scope_cost=0.02))
    assert result.threshold_source == "dev"
    assert result.oos_score in ("probability", "energy") and set(result.oos_dev) == {"probability", "energy"}
    chosen = result.oos_dev[result.oos_score]
    assert result.oos_threshold == chosen["threshold"]
    assert chosen["in_scope_accuracy"] >= chosen["in_scope_accuracy_before"] - 0.02 - 1e-9
    only_energy = calibrate(logits, examples, labels, TrainingConfig(oos_score="energy"))
    assert only_energy.oos_score == "energy" and set(only_energy.oos_dev) == {"energy"}


def test_epoch_lines_and_a_silent_progress_log_them(caplog):
    record = {"epoch": 2, "loss": 0.5, "seconds": 3.2, "dev_primary": "intent_accuracy", "dev_score": 0.9,
              "dev_intent_accuracy": 0.9, "dev_slot_f1": None}
    assert epoch_line(record) == "epoch 2 · loss 0.5000 · dev intent_accuracy 0.9000 · intent acc 0.9000 · 3s"
    assert epoch_line({"epoch": 1, "loss": None, "seconds": 1}) == "epoch 1 · 1s"
    with caplog.at_level(logging.INFO, logger="training.progress"), TrainingProgress(10, show=False) as progress:
        progress.step(0.5)
        progress.epoch(record)
    assert "epoch 2 · loss 0.5000" in caplog.text
