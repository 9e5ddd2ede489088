"""Tests for nlu.onnx_runtime: export, caching, fp32 parity with torch, int8, and the user cache dir."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from csbot.artefacts import sha256_file
from csbot.errors import ModelError
from csbot.plugins import NLU_BACKENDS
from nlu import onnx_runtime
from nlu.artefact import WEIGHTS, ModelBundle, load_bundle, save_bundle
from nlu.calibration import Calibration
from nlu.config import NLUConfig
from nlu.inference import NLUModel
from nlu.labels import LabelMaps
from nlu.model import HeadConfig, JointIntentSlotModel
from nlu.runners.onnx import OnnxRunner, QuantizedOnnxRunner
from nlu.runners.torch_runner import TorchRunner

TEXTS = [
    "where is my order 48213?",
    "hi",
    (
        "I want to cancel my subscription and get a refund for the last three months, my account number is "
        "DE-4471-AB and the charges started in January 2024 without any notice from your billing team at all"
    ),
    "track parcel AB-1234 to Berlin",
    "ok",
    "can I change the delivery address of order 99 to 12 Baker Street, London?",
]


@pytest.fixture(autouse=True)
def user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own per-user cache, never the real ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path / "xdg-cache" / "csbot" / "onnx"


@pytest.fixture(scope="module")
def tokenizer(default_tokenizer):
    return default_tokenizer


def tiny_bundle(tokenizer, seed: int) -> ModelBundle:
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    model = JointIntentSlotModel(BertModel(config), HeadConfig(num_intents=3, num_tags=5)).eval()
    return ModelBundle(
        model=model,
        tokenizer=tokenizer,
        labels=LabelMaps(["a", "b", "c"], ["x", "y"]),
        calibration=Calibration(),
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> Path:
    return save_bundle(tiny_bundle(tokenizer, seed=0), tmp_path_factory.mktemp("tiny") / "model")


def padded(tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    enc = tokenizer(texts, padding=True, return_tensors="np", return_token_type_ids=True)
    return (
        enc["input_ids"].astype(np.int64),
        enc["attention_mask"].astype(np.int64),
        enc["token_type_ids"].astype(np.int64),
    )


def span(entity) -> tuple[str, str, int, int]:
    return entity.entity, entity.value, entity.start, entity.end


def torch_logits(bundle: ModelBundle, batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return TorchRunner(bundle.model, "cpu", half=False)(*batch)


# --- fp32 parity -----------------------------------------------------------------------------------


@pytest.mark.parametrize("texts", [TEXTS, TEXTS[:1], TEXTS[2:3]], ids=["batch", "single", "single-long"])
def test_fp32_logits_match_torch(model_dir: Path, tokenizer, texts: list[str]) -> None:
    bundle = load_bundle(model_dir)
    batch = padded(tokenizer, texts)
    assert batch[0].shape[1] > 16 or len(texts) == 1  # longer than the example batch the graph was traced on
    runner = OnnxRunner(bundle, model_dir)
    intent, slots, pooled = runner(*batch)
    want_intent, want_slots, want_pooled = torch_logits(bundle, batch)
    assert intent.dtype == np.float32 and slots.dtype == np.float32 and pooled.dtype == np.float32
    assert intent.shape == (len(texts), 3)
    assert slots.shape == (len(texts), batch[0].shape[1], 5)
    assert pooled.shape == (len(texts), bundle.model.encoder.config.hidden_size)
    np.testing.assert_allclose(intent, want_intent, atol=1e-4, rtol=0)
    np.testing.assert_allclose(slots, want_slots, atol=1e-4, rtol=0)
    np.testing.assert_allclose(pooled, want_pooled, atol=1e-4, rtol=0)
    assert runner.path == model_dir / "model.onnx"
    assert [node.name for node in runner.session.get_outputs()] == ["intent_logits", "slot_logits", "pooled"]


def test_graph_has_dynamic_axes_and_opset(model_dir: Path) -> None:
    import onnx

    OnnxRunner(load_bundle(model_dir), model_dir)
    graph = onnx.load(str(model_dir / "model.onnx"))
    assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= 17
    dims = {
        i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.graph.input
    }
    assert dims["input_ids"] == ["batch", "sequence"]
    assert dims["attention_mask"] == ["batch", "sequence"]


def test_nlu_model_onnx_parses_like_torch(model_dir: Path) -> None:
    torch_model = NLUModel.load(model_dir, backend="torch", device="cpu")
    onnx_model = NLUModel.load(model_dir, backend="onnx")
    assert onnx_model.device == "cpu"
    want, got = torch_model.parse(TEXTS), onnx_model.parse(TEXTS)
    assert len(got) == len(TEXTS)
    n_entities = 0
    for w, g in zip(want, got):
        assert g.text == w.text
        assert g.intent.name == w.intent.name
        assert g.intent.confidence == pytest.approx(w.intent.confidence, abs=1e-4)
        assert [s.name for s in g.intent_ranking] == [s.name for s in w.intent_ranking]
        assert g.out_of_scope == w.out_of_scope
        assert [span(e) for e in g.entities] == [span(e) for e in w.entities]
        for ge, we in zip(g.entities, w.entities):
            assert ge.confidence == pytest.approx(we.confidence, abs=1e-4)
        n_entities += len(w.entities)
    assert n_entities > 0  # the random slot head tags something, so the comparison means something
    assert {r.intent.name for r in got} <= {"a", "b", "c"}


# --- int8 ------------------------------------------------------------------------------------------


def test_int8_runs_and_mostly_agrees(model_dir: Path, tokenizer) -> None:
    import onnx

    assert "onnx-int8" in NLU_BACKENDS.names()
    assert NLU_BACKENDS.resolve("onnx-int8") is QuantizedOnnxRunner
    assert NLUConfig(backend="onnx-int8").backend == "onnx-int8"
    bundle = load_bundle(model_dir)
    runner = OnnxRunner(bundle, model_dir, quantize=True)
    assert runner.path == model_dir / "model.int8.onnx"
    ops = {node.op_type for node in onnx.load(str(runner.path)).graph.node}
    assert ops & {"MatMulInteger", "DynamicQuantizeLinear", "DynamicQuantizeMatMul"}
    meta = json.loads((model_dir / "model.int8.onnx.json").read_text())
    assert meta["quantized"] is True and meta["weights_sha256"] == sha256_file(model_dir / WEIGHTS)

    batch = padded(tokenizer, TEXTS)
    intent, slots, pooled = runner(*batch)
    assert intent.shape == (len(TEXTS), 3) and slots.shape == (len(TEXTS), batch[0].shape[1], 5)
    assert np.isfinite(intent).all() and np.isfinite(slots).all() and np.isfinite(pooled).all()
    want_intent, _, _ = torch_logits(bundle, batch)
    agree = (intent.argmax(-1) == want_intent.argmax(-1)).mean()
    assert agree >= 0.5

    results = NLUModel.load(model_dir, backend="onnx-int8").parse(TEXTS)
    assert [r.text for r in results] == TEXTS
    assert all(r.intent.name in {"a", "b", "c"} and 0.0 < r.intent.confidence <= 1.0 for r in results)


# --- caching ---------------------------------------------------------------------------------------


def test_cached_graph_is_reused_and_reexported_when_weights_change(
    tmp_path: Path, tokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safetensors.torch import save_file

    model_dir = save_bundle(tiny_bundle(tokenizer, seed=1), tmp_path / "model")
    first = OnnxRunner(load_bundle(model_dir), model_dir)
    onnx_file, sidecar = model_dir / "model.onnx", model_dir / "model.onnx.json"
    assert first.path == onnx_file
    meta = json.loads(sidecar.read_text())
    assert meta["weights_sha256"] == sha256_file(model_dir / WEIGHTS)
    assert meta["source"] == "model.safetensors"
    mtime, content = onnx_file.stat().st_mtime_ns, onnx_file.read_bytes()
    assert not list(model_dir.glob(".*tmp*"))  # no temp files left behind

    # Second load: no export at all.
    def no_export(*args, **kwargs):
        raise AssertionError("the cached graph should have been reused")

    with monkeypatch.context() as m:
        m.setattr(torch.onnx, "export", no_export)
        second = OnnxRunner(load_bundle(model_dir), model_dir)
    assert second.path == onnx_file
    assert onnx_file.stat().st_mtime_ns == mtime

    # Retrained weights written in place: the sidecar no longer matches, so the graph is re-exported.
    retrained = tiny_bundle(tokenizer, seed=2)
    state = {k: v.detach().float().contiguous() for k, v in retrained.model.state_dict().items()}
    save_file(state, str(model_dir / WEIGHTS), metadata={"format": "pt"})
    third = OnnxRunner(retrained, model_dir)
    assert onnx_file.read_bytes() != content
    assert (
        json.loads(sidecar.read_text())["weights_sha256"]
        == sha256_file(model_dir / WEIGHTS)
        != meta["weights_sha256"]
    )
    batch = padded(tokenizer, TEXTS[:3])
    intent, slots, _ = third(*batch)
    want_intent, want_slots, _ = torch_logits(retrained, batch)
    np.testing.assert_allclose(intent, want_intent, atol=1e-4, rtol=0)
    np.testing.assert_allclose(slots, want_slots, atol=1e-4, rtol=0)
    old_intent, _, _ = first(*batch)
    assert not np.allclose(intent, old_intent, atol=1e-3)


def test_corrupt_cached_graph_is_reexported(tmp_path: Path, tokenizer) -> None:
    model_dir = save_bundle(tiny_bundle(tokenizer, seed=3), tmp_path / "model")
    bundle = load_bundle(model_dir)
    OnnxRunner(bundle, model_dir)
    (model_dir / "model.onnx").write_bytes(b"not a graph")
    runner = OnnxRunner(bundle, model_dir)
    batch = padded(tokenizer, TEXTS[:2])
    np.testing.assert_allclose(runner(*batch)[0], torch_logits(bundle, batch)[0], atol=1e-4, rtol=0)


# --- no writable model directory -------------------------------------------------------------------


def test_no_model_dir_uses_user_cache(tmp_path: Path, tokenizer, user_cache: Path) -> None:
    model_dir = save_bundle(tiny_bundle(tokenizer, seed=4), tmp_path / "model")
    bundle = load_bundle(model_dir)
    sha = sha256_file(model_dir / WEIGHTS)
    runner = OnnxRunner(bundle, None)
    assert runner.path == user_cache / sha[:16] / "model.onnx"
    assert runner.path.is_file()
    assert json.loads((user_cache / sha[:16] / "model.onnx.json").read_text())["weights_sha256"] == sha
    assert not (model_dir / "model.onnx").exists()
    batch = padded(tokenizer, TEXTS)
    np.testing.assert_allclose(runner(*batch)[0], torch_logits(bundle, batch)[0], atol=1e-4, rtol=0)
    mtime = runner.path.stat().st_mtime_ns
    assert OnnxRunner(bundle, None).path.stat().st_mtime_ns == mtime  # reused from the cache


def test_unwritable_model_dir_falls_back_to_user_cache(
    tmp_path: Path, tokenizer, user_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir = save_bundle(tiny_bundle(tokenizer, seed=5), tmp_path / "model")
    model_dir.chmod(0o555)  # ignored by root, hence the probe below is made to fail for this directory
    real_writable = onnx_runtime._writable
    monkeypatch.setattr(onnx_runtime, "_writable", lambda d: d != model_dir and real_writable(d))
    try:
        bundle = load_bundle(model_dir)
        runner = OnnxRunner(bundle, model_dir, quantize=True)
        sha = sha256_file(model_dir / WEIGHTS)
        assert runner.path == user_cache / sha[:16] / "model.int8.onnx"
        assert (user_cache / sha[:16] / "model.onnx").is_file()
        assert not (model_dir / "model.onnx").exists() and not (model_dir / "model.int8.onnx").exists()
        intent, slots, _ = runner(*padded(tokenizer, TEXTS[:2]))
        assert intent.shape == (2, 3) and np.isfinite(slots).all()
        parsed = NLUModel.load(model_dir, backend="onnx").parse(TEXTS[:2])
        assert [p.text for p in parsed] == TEXTS[:2]
    finally:
        model_dir.chmod(0o755)


def test_read_only_model_dir_with_current_graph_is_used_as_is(
    tmp_path: Path, tokenizer, user_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir = save_bundle(tiny_bundle(tokenizer, seed=6), tmp_path / "model")
    bundle = load_bundle(model_dir)
    OnnxRunner(bundle, model_dir)
    shipped = sorted(p.name for p in model_dir.iterdir())
    real_writable = onnx_runtime._writable
    monkeypatch.setattr(onnx_runtime, "_writable", lambda d: d != model_dir and real_writable(d))
    runner = OnnxRunner(bundle, model_dir)
    assert runner.path == model_dir / "model.onnx"
    assert not user_cache.exists()

    # int8 is quantized from the shipped fp32 graph into the cache, writing nothing in the model dir.
    int8 = OnnxRunner(bundle, model_dir, quantize=True)
    cache = user_cache / sha256_file(model_dir / WEIGHTS)[:16]
    assert int8.path == cache / "model.int8.onnx"
    assert sorted(p.name for p in cache.iterdir()) == ["model.int8.onnx", "model.int8.onnx.json"]
    assert sorted(p.name for p in model_dir.iterdir()) == shipped
    intent, _, _ = int8(*padded(tokenizer, TEXTS[:2]))
    assert intent.shape == (2, 3) and np.isfinite(intent).all()


# --- errors ----------------------------------------------------------------------------------------


def test_export_failure_is_a_model_error(tmp_path: Path, tokenizer, monkeypatch: pytest.MonkeyPatch) -> None:
    model_dir = save_bundle(tiny_bundle(tokenizer, seed=7), tmp_path / "model")

    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operator aten::frobnicate")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(ModelError, match=r"cannot export the model to ONNX.*frobnicate"):
        OnnxRunner(load_bundle(model_dir), model_dir)
    assert not (model_dir / "model.onnx").exists()
    assert not [p.name for p in model_dir.iterdir() if "onnx" in p.name]


def test_nowhere_writable_is_a_model_error(
    tmp_path: Path, tokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir = save_bundle(tiny_bundle(tokenizer, seed=8), tmp_path / "model")
    monkeypatch.setattr(onnx_runtime, "_writable", lambda d: False)
    with pytest.raises(ModelError, match="is writable"):
        OnnxRunner(load_bundle(model_dir), model_dir)
