"""Train the real default encoder for a few steps on a few dozen examples, save, load and parse."""

from __future__ import annotations

import pytest

from nlu.inference import NLUModel
from nlu.schema import EntitySpan, Example
from training.config import TrainingConfig
from training.trainer import Trainer


def examples() -> list[Example]:
    out = []
    for n in ("48213", "99120", "10077", "55501", "31337", "70001", "42424", "86420"):
        for template in ("where is my order {n}", "track order {n} please", "status of order {n}?"):
            text = template.format(n=n)
            start = text.index(n)
            out.append(Example(text, "track_order", [EntitySpan(start, start + len(n), "order_id", n)]))
    for text in ("hello", "hi there", "good morning", "hey!", "hello bot", "hi", "hey there", "morning!"):
        out.append(Example(text, "greet"))
    for text in ("what payment methods do you take", "can i pay with paypal", "do you accept visa",
                 "can i pay by card", "is apple pay ok", "payment options?", "do you take mastercard", "pay with cash?"):
        out.append(Example(text, "payment_methods"))
    return out


@pytest.mark.slow
def test_train_default_encoder_then_parse(tmp_path):
    data = examples()
    dev = data[::6]
    config = TrainingConfig(epochs=6, min_steps=0, batch_size=8, learning_rate=2e-4, head_learning_rate=3e-3, seed=3,
                            patience=6, device="cpu", warmup_ratio=0.0)
    result = Trainer(config, data, dev, out_dir=tmp_path / "model", show_progress=False).run()

    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0] / 2, losses
    assert result.metrics["intent_accuracy"] >= 0.8
    calibration = result.metrics["calibration"]
    assert calibration["temperature"] >= 1.0 and calibration["threshold_source"] == "neighbours"

    model = NLUModel.load(tmp_path / "model", device="cpu")
    parsed = model.parse(["where is my order 12345", "hello there", "which payment methods can i use"])
    assert [p.intent.name for p in parsed] == ["track_order", "greet", "payment_methods"]
    assert [p.out_of_scope for p in parsed] == [False, False, False]
    # no out-of-scope example was ever given, yet a message about something else is told apart
    unrelated = model.parse(["how frequently is the bus running today", "what is the capital of australia"])
    assert all(p.out_of_scope for p in unrelated), [(p.oos_score, model.neighbour_threshold) for p in unrelated]
    orders = [(e.entity, e.value, e.start, e.end) for e in parsed[0].entities]
    assert orders == [("order_id", "12345", 18, 23)]


def test_out_of_scope_dev_selects_epochs_at_the_shipped_threshold(tmp_path, tiny_encoder_dir):
    data = examples() + [Example(t, "oos") for t in ("tell me a joke", "what is the weather", "sing a song",
                                                         "who won the match", "how tall is everest", "play jazz")]
    dev = data[::3]
    config = TrainingConfig(base_model=str(tiny_encoder_dir), epochs=2, min_steps=0, batch_size=8, seed=3, device="cpu",
                            warmup_ratio=0.0)
    result = Trainer(config, data, dev, out_dir=None, show_progress=False).run()

    assert [h["dev_primary"] for h in result.history] == ["oos_balanced", "oos_balanced"]
    calibration = result.metrics["calibration"]
    assert calibration["threshold_source"] == "dev"
    best = result.history[result.best_epoch - 1]["dev_score"]
    assert result.metrics["oos_balanced"] == pytest.approx(best)
    # Both scores were measured on dev and the one kept has the most recall within the allowed cost.
    measured = calibration["oos_dev"]
    assert set(measured) == {"probability", "energy"}
    kept = measured[calibration["oos_score"]]
    assert kept["threshold"] == pytest.approx(calibration["oos_threshold"])
    assert kept["oos_recall"] == max(m["oos_recall"] for m in measured.values())
    for m in measured.values():
        assert m["in_scope_accuracy"] >= m["in_scope_accuracy_before"] - 0.01 - 1e-9


def test_out_of_scope_score_can_be_fixed_by_config(tmp_path, tiny_encoder_dir):
    data = examples() + [Example(t, "oos") for t in ("tell me a joke", "what is the weather", "sing a song")]
    config = TrainingConfig(base_model=str(tiny_encoder_dir), epochs=1, min_steps=0, batch_size=8, seed=3,
                            device="cpu", oos_score="energy")
    result = Trainer(config, data, data[::2], out_dir=tmp_path / "m", show_progress=False).run()
    assert result.metrics["calibration"]["oos_score"] == "energy"
    assert set(result.metrics["calibration"]["oos_dev"]) == {"energy"}
    model = NLUModel.load(tmp_path / "m", device="cpu")
    assert model.oos_score == "energy" and model.oos_threshold == pytest.approx(result.metrics["calibration"]["oos_threshold"])


def test_without_out_of_scope_data_the_model_learns_how_close_messages_are_to_its_examples(tmp_path, tiny_encoder_dir):
    """No out-of-scope examples anywhere: the neighbour detector is built from the training examples, its threshold
    keeps the configured share of dev, it is saved with a checksum and used by the loaded model."""
    import numpy as np

    from csbot.errors import ArtefactError
    from nlu.artefact import load_bundle

    data = examples()
    dev = data[::3]
    config = TrainingConfig(base_model=str(tiny_encoder_dir), epochs=1, min_steps=0, batch_size=8, seed=3,
                            device="cpu", oos_accept_rate=0.9, oos_neighbours_per_intent=5)
    result = Trainer(config, data, dev, out_dir=tmp_path / "m", show_progress=False).run()
    calibration = result.metrics["calibration"]
    assert calibration["threshold_source"] == "neighbours" and calibration["oos_threshold"] == 0.0
    assert calibration["neighbour_accept_rate"] == 0.9 and calibration["neighbour_dev_size"] == len(dev)
    assert calibration["temperature"] >= 1.0
    bundle = load_bundle(tmp_path / "m")
    assert bundle.neighbours is not None and len(bundle.neighbours.vectors) == 15  # 3 intents x 5
    assert "neighbours.npy" in bundle.manifest["checksums"]

    model = NLUModel.load(tmp_path / "m", device="cpu")
    parsed = model.parse([ex.text for ex in dev])
    scores = np.array([p.oos_score for p in parsed])
    threshold = calibration["neighbour_threshold"]
    assert model.neighbour_threshold == pytest.approx(threshold)
    assert (scores >= threshold - 1e-3).mean() >= 0.9 - 1e-9          # the dev share it was chosen to keep
    assert [p.out_of_scope for p in parsed] == [bool(s < threshold) for s in scores]
    assert all(p.to_dict()["oos_score"] == p.oos_score for p in parsed)

    (tmp_path / "m" / "neighbours.npy").write_bytes(b"not an array")
    with pytest.raises(ArtefactError, match="checksum"):
        load_bundle(tmp_path / "m")


def test_the_intent_threshold_chosen_on_dev_reaches_every_parse(tiny_encoder_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("csbot.thresholds.MIN_PRECISION_EXAMPLES", 1)  # the tiny dev set is enough here
    data = examples()
    config = TrainingConfig(base_model=str(tiny_encoder_dir), epochs=1, min_steps=0, batch_size=8, seed=3,
                            device="cpu", answer_precision=0.9)
    result = Trainer(config, data, data[::3], out_dir=tmp_path / "m", show_progress=False).run()
    calibration = result.metrics["calibration"]
    assert calibration["intent_precision"] == 0.9 and 0 <= calibration["intent_threshold"] <= 1
    model = NLUModel.load(tmp_path / "m", device="cpu")
    assert model.intent_threshold == pytest.approx(calibration["intent_threshold"])
    parsed = model.parse(["hello there", "something else"])
    assert [p.threshold for p in parsed] == [model.intent_threshold] * 2
    assert parsed[0].to_dict()["threshold"] == model.intent_threshold


@pytest.mark.parametrize(("detector", "with_oos", "expected"), [
    ("auto", True, False), ("none", False, False), ("neighbours", True, True),
])
def test_the_neighbour_detector_follows_the_config(tiny_encoder_dir, detector, with_oos, expected):
    data = examples() + ([Example(t, "oos") for t in ("tell me a joke", "what is the weather", "sing a song")]
                         if with_oos else [])
    config = TrainingConfig(base_model=str(tiny_encoder_dir), epochs=1, min_steps=0, batch_size=8, seed=3,
                            device="cpu", oos_detector=detector)
    result = Trainer(config, data, data[::2], out_dir=None, show_progress=False).run()
    calibration = result.metrics["calibration"]
    assert (calibration["neighbour_threshold"] is not None) is expected
    assert (result.bundle.neighbours is not None) is expected
    if expected:  # the bank holds the in-scope training examples only, never the out-of-scope ones
        assert len(result.bundle.neighbours.vectors) == len(examples())
    if with_oos:  # the out-of-scope dev data still chooses the probability (or energy) threshold
        assert calibration["threshold_source"] == "dev"
