"""The optimised CPU path: the joint model exported to ONNX for ONNX Runtime (the runners that load the
graphs are :mod:`nlu.runners.onnx`).

The network is exported once with torch's TorchScript-based exporter (``torch.onnx.export(...,
dynamo=False)``; the dynamo exporter needs onnxscript, which csbot does not depend on), with dynamic
batch and sequence axes, and the three outputs inference needs (``intent_logits``, ``slot_logits`` and
``pooled``, the sentence vector out-of-scope detection compares with the training examples'). ``onnx-int8`` adds dynamic int8 quantisation of the weights
(``onnxruntime.quantization.quantize_dynamic``).

Exported graphs are cached beside the weights::

    MODEL_DIR/
      model.onnx            fp32 graph
      model.onnx.json       sidecar: sha256 of the model.safetensors it came from, head config, opset
      model.int8.onnx       int8 graph (backend onnx-int8)
      model.int8.onnx.json

A retrained model (new ``model.safetensors``) is re-exported. When the model directory is not
writable, or no directory is given, the cache is ``$XDG_CACHE_HOME/csbot/onnx/<sha prefix>/``
(``~/.cache`` by default). Every file is written to a temp file first and moved into place with
``os.replace``, and a fresh fp32 export is checked against torch on shapes other than the example
batch's before it is cached.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csbot.artefacts import sha256_file
from csbot.errors import ModelError
from nlu.artefact import WEIGHTS, ModelBundle

log = logging.getLogger(__name__)

OPSET = 17
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAMES = ("intent_logits", "slot_logits", "pooled")
#: Bumped when the way graphs are exported changes, so old cached graphs are re-exported.
EXPORT_FORMAT = 2  # 2: the pooled sentence vector is an output too (out-of-scope detection)
_CHECK_ATOL = 1e-3
#: mkstemp makes files private; cached graphs are as readable as the weights beside them.
_FILE_MODE = 0o644


# -- cache -------------------------------------------------------------------------------------
def cache_root() -> Path:
    """The per-user cache of exported graphs, used when the model directory cannot be written."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "csbot" / "onnx"


def weights_sha256(bundle: ModelBundle, model_dir: str | Path | None) -> str:
    """sha256 of the ``model.safetensors`` the bundle came from (or of its weights, without a file)."""
    if model_dir is not None and (Path(model_dir) / WEIGHTS).is_file():
        return sha256_file(Path(model_dir) / WEIGHTS)
    saved = bundle.manifest.get("checksums", {}).get(WEIGHTS) if bundle.manifest else None
    if saved:
        return str(saved)
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(bundle.model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _expected_meta(sha: str, bundle: ModelBundle, quantized: bool) -> dict[str, Any]:
    return {
        "export_format": EXPORT_FORMAT,
        "source": WEIGHTS,
        "weights_sha256": sha,
        "heads": bundle.model.heads.to_dict(),
        "quantized": quantized,
        "opset": OPSET,
    }


def _is_current(path: Path, expected: dict[str, Any]) -> bool:
    if not path.is_file():
        return False
    try:
        meta = json.loads(_sidecar(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and all(meta.get(k) == v for k, v in expected.items())


def _writable(directory: Path) -> bool:
    """Whether files can be created in ``directory`` (tried, not guessed: root ignores mode bits)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".csbot-write-test.", dir=directory)
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


def _atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, _FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _temp_onnx(directory: Path, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp.onnx", dir=directory)
    os.close(fd)
    os.chmod(tmp, _FILE_MODE)
    return Path(tmp)


def ensure_onnx(
    bundle: ModelBundle, model_dir: str | Path | None, quantize: bool = False, force: bool = False
) -> tuple[Path, bool]:
    """The path of an up-to-date graph for ``bundle``, exporting it if needed; and whether it is new."""
    sha = weights_sha256(bundle, model_dir)
    name = INT8_FILE if quantize else FP32_FILE
    candidates = [Path(model_dir)] if model_dir is not None and Path(model_dir).is_dir() else []
    candidates.append(cache_root() / sha[:16])
    expected = _expected_meta(sha, bundle, quantize)
    if not force:
        for directory in candidates:
            if _is_current(directory / name, expected):
                log.debug("using cached ONNX graph %s", directory / name)
                return directory / name, False
    target = next((d for d in candidates if _writable(d)), None)
    if target is None:
        raise ModelError(
            f"cannot export the model to ONNX: neither {' nor '.join(str(d) for d in candidates)} is writable"
        )
    fp32_meta = _expected_meta(sha, bundle, False)
    current = [] if force else [d / FP32_FILE for d in candidates if _is_current(d / FP32_FILE, fp32_meta)]
    fp32 = current[0] if current else None
    if fp32 is None:
        fp32 = target / FP32_FILE
        _export_fp32(bundle, fp32, fp32_meta)
    if not quantize:
        return fp32, True
    int8 = target / INT8_FILE
    _quantize(fp32, int8, expected)
    return int8, True


# -- export ------------------------------------------------------------------------------------
class _Outputs(torch.nn.Module):
    """The joint model with its three outputs named as the graph names them (:data:`OUTPUT_NAMES`)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        intent_logits, slot_logits, pooled = self.model(input_ids, attention_mask, token_type_ids)
        return intent_logits, slot_logits, pooled


def _export_fp32(bundle: ModelBundle, out: Path, meta: dict[str, Any]) -> None:
    started = time.perf_counter()
    model = bundle.model
    if any(p.device.type != "cpu" or p.dtype != torch.float32 for p in model.parameters()):
        import copy

        model = copy.deepcopy(model).float().cpu()
    was_training = model.training
    wrapper = _Outputs(model).eval()
    example = _example_batch(model, batch=2, length=16, seed=0)
    tmp = _temp_onnx(out.parent, out.name)
    dynamic_axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    dynamic_axes["intent_logits"] = {0: "batch"}
    dynamic_axes["slot_logits"] = {0: "batch", 1: "sequence"}
    dynamic_axes["pooled"] = {0: "batch"}
    try:
        try:
            with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
                # The legacy exporter warns that it is deprecated and that tracing sees Python
                # booleans; the check below is what guarantees the graph generalises.
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    wrapper,
                    tuple(torch.from_numpy(a) for a in example),
                    str(tmp),
                    dynamo=False,
                    input_names=list(INPUT_NAMES),
                    output_names=list(OUTPUT_NAMES),
                    dynamic_axes=dynamic_axes,
                    opset_version=OPSET,
                )
        except Exception as exc:
            raise ModelError(
                f"cannot export the model to ONNX (torch {torch.__version__}, TorchScript exporter, "
                f"opset {OPSET}): {exc.__class__.__name__}: {exc}"
            ) from exc
        finally:
            model.train(was_training)
        _check_against_torch(model, tmp)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _atomic_write_json(
        _sidecar(out), {**meta, "exporter": f"torch.onnx TorchScript (torch {torch.__version__})"}
    )
    log.info("exported ONNX graph %s in %.1fs", out, time.perf_counter() - started)


def _example_batch(
    model: Any, batch: int, length: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random token ids with the last row padded, so the traced graph keeps its attention masking."""
    vocab = int(getattr(model.encoder.config, "vocab_size", 1000))
    rng = np.random.default_rng(seed)
    ids = rng.integers(min(5, vocab - 1), vocab, size=(batch, length), dtype=np.int64)
    mask = np.ones((batch, length), dtype=np.int64)
    if batch > 1:
        mask[-1, max(1, length * 2 // 3) :] = 0
        ids[-1, max(1, length * 2 // 3) :] = 0
    return ids, mask, np.zeros_like(ids)


def _check_against_torch(model: Any, path: Path) -> None:
    """A fresh export must match torch on batch and sequence sizes other than the example's."""
    session = open_session(path)
    names = {node.name for node in session.get_inputs()}
    longest = min(40, int(getattr(model.encoder.config, "max_position_embeddings", 512)))
    for seed, (batch, length) in enumerate([(1, 5), (3, longest)], start=1):
        ids, mask, types = _example_batch(model, batch, length, seed)
        with torch.inference_mode():
            want_intent, want_slots, want_pooled = model(
                torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types)
            )
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        got_intent, got_slots, got_pooled = session.run(list(OUTPUT_NAMES), {k: v for k, v in feed.items() if k in names})
        for what, got, want in (("intent logits", got_intent, want_intent), ("slot logits", got_slots, want_slots),
                                ("pooled vectors", got_pooled, want_pooled)):
            want = want.float().numpy()
            if got.shape != want.shape or not np.allclose(got, want, atol=_CHECK_ATOL, rtol=_CHECK_ATOL):
                diff = float(np.abs(got - want).max()) if got.shape == want.shape else float("nan")
                raise ModelError(
                    f"the ONNX export does not reproduce the torch model on a batch of {batch} x {length} "
                    f"({what}: shape {got.shape} vs {want.shape}, max difference {diff:.3g}); "
                    "use the torch backend"
                )


def _no_preprocess_advice(record: logging.LogRecord) -> bool:
    """Drops quantize_dynamic's advice (on the root logger) to run ``quant_pre_process`` first: its
    symbolic shape inference does not complete on these graphs, and dynamic quantisation needs none."""
    return "pre-processing before quantization" not in record.getMessage()


def _quantize(fp32: Path, out: Path, meta: dict[str, Any]) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    started = time.perf_counter()
    tmp = _temp_onnx(out.parent, out.name)
    try:
        root = logging.getLogger()
        root.addFilter(_no_preprocess_advice)
        try:
            # Given a path, quantize_dynamic writes "<name>-inferred.onnx" beside it (shared by concurrent
            # exports, impossible in a read-only model dir); given the graph, it works in a temp dir.
            quantize_dynamic(onnx.load(str(fp32)), str(tmp), weight_type=QuantType.QInt8)
        except Exception as exc:
            raise ModelError(f"cannot quantize {fp32} to int8: {exc.__class__.__name__}: {exc}") from exc
        finally:
            root.removeFilter(_no_preprocess_advice)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _atomic_write_json(_sidecar(out), {**meta, "quantization": "dynamic, weights QInt8"})
    log.info("quantized ONNX graph %s in %.1fs", out, time.perf_counter() - started)


# -- session -----------------------------------------------------------------------------------
def _num_threads() -> int:
    """As many intra-op threads as torch uses (``torch.set_num_threads``, ``OMP_NUM_THREADS``)."""
    return max(1, torch.get_num_threads() or os.cpu_count() or 1)


def open_session(path: Path) -> Any:
    """An ONNX Runtime session on the CPU for the graph at ``path``; failure raises ModelError naming it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = _num_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelError(
            f"{path}: ONNX Runtime cannot load the graph: {exc.__class__.__name__}: {exc}"
        ) from exc
