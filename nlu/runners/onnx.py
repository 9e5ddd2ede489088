"""The ONNX Runtime backends: ``onnx`` (fp32) and ``onnx-int8`` (dynamically quantised weights), on the CPU.

The graphs are exported and cached by :mod:`nlu.onnx_runtime`; these runners only load and run them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from csbot.errors import ModelError
from nlu import onnx_runtime
from nlu.runners.base import Runner

if TYPE_CHECKING:
    from nlu.artefact import ModelBundle

log = logging.getLogger(__name__)


class OnnxRunner(Runner):
    """Runs a bundle's network with ONNX Runtime on the CPU; ``quantize`` picks the int8 graph.

    ``InferenceSession.run`` is thread-safe, and the runner keeps no other state, so one runner may
    serve several threads.
    """

    #: Whether :meth:`from_bundle` builds the int8 graph.
    quantized = False

    def __init__(self, bundle: ModelBundle, model_dir: str | Path | None, quantize: bool = False) -> None:
        self.quantize = quantize
        self.device = "cpu"
        self.path, fresh = onnx_runtime.ensure_onnx(bundle, model_dir, quantize)
        try:
            self.session = onnx_runtime.open_session(self.path)
        except ModelError:
            if fresh:
                raise
            log.warning("cached ONNX graph %s cannot be loaded; exporting it again", self.path)
            self.path, _ = onnx_runtime.ensure_onnx(bundle, model_dir, quantize, force=True)
            self.session = onnx_runtime.open_session(self.path)
        self._inputs = {node.name for node in self.session.get_inputs()}
        missing = {"input_ids", "attention_mask"} - self._inputs
        if missing:
            raise ModelError(f"{self.path}: ONNX graph lacks the inputs {', '.join(sorted(missing))}")
        self._outputs = list(onnx_runtime.OUTPUT_NAMES)

    @classmethod
    def from_bundle(
        cls, bundle: ModelBundle, *, model_dir: str | Path | None = None, device: str = "auto", precision: str = "auto"
    ) -> OnnxRunner:
        """Always on the CPU in fp32 (int8 weights for ``onnx-int8``): ``device`` and ``precision`` are ignored."""
        return cls(bundle, model_dir, quantize=cls.quantized)

    def __call__(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        feed = {
            "input_ids": np.ascontiguousarray(input_ids, dtype=np.int64),
            "attention_mask": np.ascontiguousarray(attention_mask, dtype=np.int64),
        }
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.ascontiguousarray(token_type_ids, dtype=np.int64)
        intent, slots, pooled = self.session.run(self._outputs, feed)
        return (np.asarray(intent, dtype=np.float32), np.asarray(slots, dtype=np.float32),
                np.asarray(pooled, dtype=np.float32))


class QuantizedOnnxRunner(OnnxRunner):
    """``onnx-int8``: the graph with int8 weights (dynamic quantisation), faster on most CPUs."""

    quantized = True
