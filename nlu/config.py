"""Inference options (section ``nlu`` of the config file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class NLUConfig(BaseModel):
    """How a trained model is run: device, backend, batch size, an optional threshold override."""

    model_config = ConfigDict(extra="forbid")

    device: str = "auto"
    backend: Literal["torch", "onnx", "onnx-int8"] = "torch"
    batch_size: int = Field(32, ge=1)
    max_length: int = Field(128, ge=8)
    oos_threshold: float | None = Field(
        None, ge=0, le=1, description="overrides the model's threshold unless it was chosen on dev data"
    )

    @classmethod
    def from_file(cls, path: str | Path | None = None, **overrides: object) -> NLUConfig:
        from csbot.config import load_section, validated

        values = load_section("nlu", path, cls)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return validated(cls, values, "nlu options")
