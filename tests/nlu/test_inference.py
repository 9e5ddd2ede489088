"""Batched inference: contract of the result, order under length grouping, threads, thresholds."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

import numpy as np
import pytest

from csbot.errors import ConfigError, ModelError
from csbot.plugins import NLU_BACKENDS
from nlu.artefact import load_bundle
from nlu.calibration import Calibration
from nlu.inference import NLUModel
from nlu.labels import LabelMaps
from nlu.runners.torch_runner import TorchRunner
from nlu.schema import Example

TEXTS = [
    "hi",
    "where is my order 48213 it was supposed to arrive last monday and nothing came",
    "cancel order 55555",
    "🎉 thanks",
    "track order 99120 please",
]


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return NLUModel.load(tiny_model_dir, device="cpu", batch_size=2)


def test_parse_result_follows_the_contract(model, tiny_labels):
    result = model.parse(["where is my order 48213"])[0].to_dict()
    assert set(result) >= {"text", "intent", "intent_ranking", "entities", "out_of_scope"}
    assert result["intent"]["name"] in tiny_labels.intents
    assert 0.0 <= result["intent"]["confidence"] <= 1.0
    assert 1 <= len(result["intent_ranking"]) <= 5
    confidences = [r["confidence"] for r in result["intent_ranking"]]
    assert confidences == sorted(confidences, reverse=True)
    assert isinstance(result["out_of_scope"], bool)
    for entity in result["entities"]:
        assert "where is my order 48213"[entity["start"] : entity["end"]] == entity["value"]


def test_length_grouped_batches_keep_input_order(model):
    batched = model.parse(TEXTS)
    one_by_one = [model.parse([t])[0] for t in TEXTS]
    assert [r.text for r in batched] == TEXTS
    for a, b in zip(batched, one_by_one):
        assert a.intent.name == b.intent.name
        assert a.intent.confidence == pytest.approx(b.intent.confidence, abs=1e-5)


def test_parse_is_thread_safe(model):
    expected = [r.to_dict() for r in model.parse(TEXTS)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: [r.to_dict() for r in model.parse(TEXTS)], range(24)))
    for got in results:
        for a, b in zip(got, expected):
            assert a["intent"]["name"] == b["intent"]["name"]
            assert a["intent"]["confidence"] == pytest.approx(b["intent"]["confidence"], abs=1e-5)


def test_empty_batch_and_single_string(model):
    assert model.parse([]) == []
    assert model.parse("hi")[0].text == "hi"


def test_threshold_from_config_flags_low_confidence(tiny_model_dir):
    strict = NLUModel.load(tiny_model_dir, device="cpu", oos_threshold=0.99)
    lenient = NLUModel.load(tiny_model_dir, device="cpu", oos_threshold=0.0)
    assert all(r.out_of_scope for r in strict.parse(TEXTS))  # an untrained 3-way head is never 99% sure
    assert not any(r.out_of_scope for r in lenient.parse(TEXTS))


def test_threshold_chosen_on_dev_wins_over_config(tiny_model_dir):
    bundle = load_bundle(tiny_model_dir)
    bundle.calibration = Calibration(temperature=1.0, oos_threshold=0.0, threshold_source="dev")
    model = NLUModel(bundle, device="cpu", oos_threshold=0.99)
    assert model.oos_threshold == 0.0


def test_temperature_softens_confidences(tiny_model_dir):
    bundle = load_bundle(tiny_model_dir)
    sharp = NLUModel(bundle, device="cpu").parse(TEXTS)
    bundle.calibration = Calibration(temperature=5.0)
    soft = NLUModel(bundle, device="cpu").parse(TEXTS)
    for a, b in zip(sharp, soft):
        assert a.intent.name == b.intent.name
        assert b.intent.confidence < a.intent.confidence


def test_out_of_scope_class_prediction_sets_the_flag(tiny_bundle_factory):
    import torch

    labels = LabelMaps.from_examples([Example("a", "oos"), Example("b", "balance"), Example("c", "pin")])
    bundle = tiny_bundle_factory(labels)
    with torch.no_grad():
        bundle.model.intent_head.bias[:] = torch.tensor([0.0, 10.0, 0.0])  # "oos" is index 1 (sorted)
    result = NLUModel(bundle, device="cpu").parse(["anything"])[0]
    assert labels.intents[1] == "oos"
    assert result.out_of_scope and result.intent.name == "oos"
    assert all(s.name != "oos" for s in result.intent_ranking)


def test_energy_score_threshold_flags_weak_responses(tiny_bundle_factory):
    import torch

    labels = LabelMaps.from_examples([Example("a", "oos"), Example("b", "balance"), Example("c", "pin")])
    bundle = tiny_bundle_factory(labels)
    with torch.no_grad():
        bundle.model.intent_head.weight.zero_()
        bundle.model.intent_head.bias[:] = torch.tensor([1.0, -5.0, 0.0])  # balance, oos, pin
    bundle.calibration = Calibration(temperature=1.0, oos_threshold=1.0, threshold_source="dev", oos_score="energy")
    weak = NLUModel(bundle, device="cpu", oos_threshold=0.0).parse(["x"])[0]
    # energy = log(e^1 + e^0) = 1.31 >= 1.0: in scope, although the same threshold on probability (0.73) is not
    assert not weak.out_of_scope and weak.intent.name == "balance"
    bundle.calibration.oos_threshold = 1.5
    assert NLUModel(bundle, device="cpu").parse(["x"])[0].out_of_scope
    bundle.calibration.oos_score = "distance"
    with pytest.raises(ModelError, match="oos_score"):
        NLUModel(bundle, device="cpu")


def test_multi_label_predicts_a_set_or_nothing(tiny_bundle_factory):
    import torch

    labels = LabelMaps.from_examples([Example("a", "flight#fare"), Example("b", ""), Example("c", "meal")])
    bundle = tiny_bundle_factory(labels)
    with torch.no_grad():
        bundle.model.intent_head.weight.zero_()
        bundle.model.intent_head.bias[:] = torch.tensor([6.0, 5.0, -6.0])  # fare, flight, meal
    result = NLUModel(bundle, device="cpu").parse(["x"])[0]
    assert result.intent.name == "fare#flight"
    assert [s.name for s in result.intents] == ["fare", "flight"]
    with torch.no_grad():
        bundle.model.intent_head.bias[:] = torch.tensor([-6.0, -5.0, -6.0])
    empty = NLUModel(bundle, device="cpu").parse(["x"])[0]
    assert empty.intent.name == "" and empty.intents == []


def test_unknown_backend_and_device(tiny_model_dir):
    with pytest.raises(ConfigError, match=r"nlu\.backend: unknown 'tpu'; known: torch, onnx, onnx-int8"):
        NLUModel.load(tiny_model_dir, backend="tpu")
    with pytest.raises(ModelError, match="device"):
        NLUModel.load(tiny_model_dir, device="quantum")


class CountingRunner(TorchRunner):
    """A backend of one's own, named by its dotted path."""

    built: ClassVar[list[str]] = []

    @classmethod
    def from_bundle(cls, bundle, *, model_dir=None, device="auto", precision="auto"):
        cls.built.append(precision)
        return super().from_bundle(bundle, model_dir=model_dir, device=device, precision=precision)


def test_a_backend_is_a_runner_named_or_given_by_dotted_path(tiny_model_dir):
    assert NLU_BACKENDS.names() == ["torch", "onnx", "onnx-int8"]
    assert NLU_BACKENDS.resolve("torch") is TorchRunner
    own = NLUModel.load(tiny_model_dir, device="cpu", backend="tests.nlu.test_inference:CountingRunner")
    runner_class = type(own._runner)  # the module imported by its dotted path, maybe a second copy of this one
    assert runner_class.__qualname__ == "CountingRunner" and runner_class.built == ["auto"]
    assert own.parse(["hi"])[0].text == "hi"
    with pytest.raises(ConfigError, match=r"is not a subclass of nlu\.runners\.base\.Runner"):
        NLUModel.load(tiny_model_dir, backend="nlu.labels:LabelMaps")


def test_cuda_request_without_gpu_falls_back_to_cpu(tiny_model_dir, caplog):
    import torch

    if torch.cuda.is_available():
        assert NLUModel.load(tiny_model_dir, device="cuda").device.startswith("cuda")
        return
    model = NLUModel.load(tiny_model_dir, device="cuda")
    assert model.device == "cpu"
    assert np.isfinite(model.logits(["hi"])[0]).all()


# -- hostile text (issue 12) -----------------------------------------------------------------------

HOSTILE = ["where is my order 48213", "my order \udcff\udcfe is late", "hi", "cancel order 55555"]


def test_a_lone_surrogate_does_not_fail_the_batch(model):
    """Issue 12: the tokenizer refuses a text with a lone surrogate (undecodable bytes read with
    surrogateescape), which failed every text of the batch. Each one is replaced by U+FFFD first: one
    character for one, so entity offsets still point into the result's text."""
    results = model.parse(HOSTILE)
    assert [r.text for r in results] == [HOSTILE[0], "my order \ufffd\ufffd is late", HOSTILE[2], HOSTILE[3]]
    clean = model.parse([HOSTILE[0], HOSTILE[2], HOSTILE[3]])
    for got, want in zip([results[0], results[2], results[3]], clean, strict=True):
        assert got.intent.name == want.intent.name
        assert got.intent.confidence == pytest.approx(want.intent.confidence, abs=1e-5)
    for result in results:
        for entity in result.entities:
            assert result.text[entity.start : entity.end] == entity.value
    assert model.parse(["\ud83d"])[0].text == "\ufffd"  # half a surrogate pair
    assert len(model.encode(["a\udc80b"])[0].ids) >= 3  # encode() alone takes it too


def test_concurrent_parses_through_the_batcher_all_answer_when_one_text_is_bad(model):
    """The same through the bot's micro-batcher: four concurrent turns, one batch, four parse results."""
    import asyncio

    from bot.understanding import ModelUnderstander

    understander = ModelUnderstander(model, max_batch=8, max_wait_ms=50)

    async def main():
        return await asyncio.gather(*(understander.parse(text) for text in HOSTILE), return_exceptions=True)

    results = asyncio.run(main())
    assert [r.text for r in results] == [HOSTILE[0], "my order \ufffd\ufffd is late", HOSTILE[2], HOSTILE[3]]
    assert understander._batcher.batches == 1
