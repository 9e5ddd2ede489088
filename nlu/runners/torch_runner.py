"""The torch backend (``torch``): fp32 on the CPU, half precision on CUDA."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from csbot.devices import resolve_device
from csbot.errors import ModelError
from nlu.runners.base import Runner

if TYPE_CHECKING:
    from nlu.artefact import ModelBundle

PRECISIONS = ("auto", "fp32", "fp16")


class TorchRunner(Runner):
    """The network in torch on ``device``; ``half`` runs it in fp16."""

    def __init__(self, model: Any, device: str, half: bool) -> None:
        import torch

        self.torch = torch
        self.device = device
        self._device = torch.device(device)
        self.model = model.to(self._device).eval()
        if half:
            self.model = self.model.half()

    @classmethod
    def from_bundle(
        cls, bundle: ModelBundle, *, model_dir: str | Path | None = None, device: str = "auto", precision: str = "auto"
    ) -> TorchRunner:
        """``auto`` precision is fp16 on CUDA and fp32 on the CPU; an unknown precision raises ModelError."""
        if precision not in PRECISIONS:
            raise ModelError(f"unknown precision {precision!r}: use auto, fp32 or fp16")
        resolved = resolve_device(device)
        half = resolved.startswith("cuda") and precision != "fp32"
        return cls(bundle.model, resolved, half)

    def __call__(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        torch = self.torch
        with torch.inference_mode():
            intent, slots, pooled = self.model(
                torch.as_tensor(input_ids, device=self._device),
                torch.as_tensor(attention_mask, device=self._device),
                torch.as_tensor(token_type_ids, device=self._device),
            )
        return intent.float().cpu().numpy(), slots.float().cpu().numpy(), pooled.float().cpu().numpy()
