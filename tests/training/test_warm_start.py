"""Warm start: label maps extended, old head rows copied exactly, new rows fresh, parent recorded."""

from __future__ import annotations

import pytest
import torch

from csbot.errors import TrainingError
from nlu.artefact import load_bundle, read_manifest
from nlu.labels import LabelMaps
from nlu.schema import EntitySpan, Example
from training.config import TrainingConfig
from training.trainer import Trainer
from training.warm_start import extend_labels, load_warm_model, warm_start


def order(text: str, number: str, intent: str = "a") -> Example:
    start = text.index(number)
    return Example(text, intent, [EntitySpan(start, start + len(number), "order_id", number)])


def city(text: str, name: str) -> Example:
    start = text.index(name)
    return Example(text, "c", [EntitySpan(start, start + len(name), "city", name)])


OLD_DATA = [
    order("where is my order 48213", "48213"), order("track order 99120 please", "99120"),
    order("status of order 10077", "10077"), order("order 55501 where is it", "55501"),
    Example("hello there", "b"), Example("hi", "b"), Example("good morning", "b"), Example("hey bot", "b"),
]
NEW_DATA = [
    order("where is order 31337", "31337"), order("track my order 70001", "70001"),
    city("ship it to paris", "paris"), city("deliver to london please", "london"),
    city("send it to berlin", "berlin"),
]  # no example of intent b: it must not be forgotten


def tiny_config(encoder_dir, **overrides) -> TrainingConfig:
    options = {"base_model": str(encoder_dir), "epochs": 2, "min_steps": 0, "batch_size": 4, "seed": 5,
               "device": "cpu", "oos_detector": "none", "learning_rate": 1e-3, "head_learning_rate": 1e-2}
    return TrainingConfig(**{**options, **overrides})


@pytest.fixture(scope="module")
def old_model_dir(tmp_path_factory, tiny_encoder_dir):
    out = tmp_path_factory.mktemp("warm") / "old"
    Trainer(tiny_config(tiny_encoder_dir), OLD_DATA, OLD_DATA[::3], out_dir=out, show_progress=False).run()
    return out


def test_extend_labels_keeps_old_indices_and_appends_new_labels_sorted():
    old = LabelMaps.from_examples(OLD_DATA)
    data = [*NEW_DATA, Example("zz top", "zz"), Example("another one", "aa_new")]
    labels = extend_labels(old, data)
    assert old.intents == ["a", "b"]
    assert labels.intents == ["a", "b", "aa_new", "c", "zz"]  # b kept though the new data lacks it
    assert labels.slot_types == ["order_id", "city"]
    assert labels.tags[: old.num_tags] == old.tags
    assert labels.tags[old.num_tags:] == ["B-city", "I-city"]
    assert not labels.multi_label


def test_extend_labels_takes_a_new_out_of_scope_label():
    labels = extend_labels(LabelMaps.from_examples(OLD_DATA), [Example("sing a song", "oos")])
    assert labels.intents == ["a", "b", "oos"] and labels.oos_label == "oos"


def test_mismatched_label_mode_is_refused(old_model_dir, tiny_encoder_dir, tmp_path):
    multi = [Example("track and hello", "a#b"), *NEW_DATA]
    with pytest.raises(TrainingError, match="single-label model with multi-label data"):
        extend_labels(LabelMaps.from_examples(OLD_DATA), multi)
    with pytest.raises(TrainingError, match="multi-label"):
        Trainer(tiny_config(tiny_encoder_dir), multi, [], out_dir=tmp_path / "m", show_progress=False,
                init_from=old_model_dir).run()
    assert not (tmp_path / "m" / "csbot-model.json").exists()


def test_surgery_copies_old_rows_exactly_and_keeps_old_predictions(old_model_dir):
    old = load_bundle(old_model_dir)
    labels = extend_labels(old.labels, NEW_DATA)
    torch.manual_seed(0)
    model = load_warm_model(old_model_dir, labels).eval()

    assert model.intent_head.weight.shape == (3, 32)
    assert labels.intents[:2] == ["a", "b"] and labels.intent_id("c") == 2
    assert torch.equal(model.intent_head.weight[:2], old.model.intent_head.weight)
    assert torch.equal(model.intent_head.bias[:2], old.model.intent_head.bias)
    assert torch.equal(model.slot_head.weight[: old.labels.num_tags], old.model.slot_head.weight)
    assert torch.equal(model.slot_head.bias[: old.labels.num_tags], old.model.slot_head.bias)
    # the new rows are freshly initialised (nn.Linear's bound 1/sqrt(fan_in)), not copies of an old row
    new_row = model.intent_head.weight[2]
    assert not any(torch.allclose(new_row, row) for row in old.model.intent_head.weight)
    assert new_row.abs().max() <= 1 / 32**0.5
    for name, tensor in old.model.encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[name], tensor), name

    batch = old.tokenizer(["where is my order 12345", "hello there", "ship it to rome"], padding=True,
                          return_tensors="pt")
    with torch.no_grad():
        old_intents, old_slots, _ = old.model(batch["input_ids"], batch["attention_mask"])
        new_intents, new_slots, _ = model(batch["input_ids"], batch["attention_mask"])
    assert torch.allclose(new_intents[:, :2], old_intents, atol=1e-6)
    assert torch.allclose(new_slots[..., : old.labels.num_tags], old_slots, atol=1e-6)
    assert torch.equal(new_intents[:, :2].argmax(-1), old_intents.argmax(-1))


def test_warm_start_adopts_the_saved_head_config(old_model_dir, tiny_encoder_dir, caplog):
    config = tiny_config(tiny_encoder_dir, pooling="cls", dropout=0.3)
    with caplog.at_level("INFO", logger="training.warm_start"):
        warm = warm_start(old_model_dir, NEW_DATA, config)
    assert warm.config.pooling == "mean" and warm.config.dropout == pytest.approx(0.1)
    assert warm.model.heads.pooling == "mean"
    assert "pooling='cls' replaced by the saved model's 'mean'" in caplog.text
    assert warm.new_intents == ["c"] and warm.new_slot_types == ["city"]
    assert warm.parent == read_manifest(old_model_dir)["version"]


def test_trainer_warm_start_saves_extended_labels_and_parent(old_model_dir, tiny_encoder_dir, tmp_path):
    out = tmp_path / "new"
    result = Trainer(tiny_config(tiny_encoder_dir, max_steps=2), NEW_DATA, NEW_DATA[::2], out_dir=out,
                     show_progress=False, init_from=old_model_dir).run()
    parent = read_manifest(old_model_dir)["version"]
    new = load_bundle(out)
    assert new.labels.intents == ["a", "b", "c"]
    assert new.labels.slot_types == ["order_id", "city"]
    assert new.parent == parent and read_manifest(out)["parent"] == parent
    assert result.metrics["training"]["parent"] == parent
    assert load_bundle(old_model_dir).parent is None
    assert new.base_model == load_bundle(old_model_dir).base_model
