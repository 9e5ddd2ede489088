"""Choosing where models run: ``auto`` picks CUDA when torch sees a GPU; CUDA asked for but absent falls back."""

from __future__ import annotations

import logging

from csbot.errors import ModelError

log = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    """``cpu`` or a ``cuda`` device for ``auto | cpu | cuda[:N]``; a missing GPU logs one line and gives ``cpu``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        log.warning("CUDA was asked for but no GPU is visible; running on the CPU")
        return "cpu"
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ModelError(f"unknown device {device!r}: use auto, cpu or cuda")
    return device
