"""Inference options (section ``nlu`` of the config file)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from csbot.plugins import NLU_BACKENDS
from nlu.extractors.base import DEFAULT_BUILTINS, ENTITY_EXTRACTORS


class NLUConfig(BaseModel):
    """How a trained model is run (device, backend, batch size, an optional threshold override), and which
    entity extractors add to the tagger's entities (docs/entities.md)."""

    model_config = ConfigDict(extra="forbid")

    device: str = "auto"
    backend: str = Field("torch", description="torch | onnx | onnx-int8 | a Runner subclass as package.module:Class")
    batch_size: int = Field(32, ge=1)
    max_length: int = Field(128, ge=8)
    oos_threshold: float | None = Field(
        None, ge=0, le=1, description="overrides the model's threshold unless it was chosen on dev data"
    )
    oos_neighbours: bool = Field(True, description="use the model's out-of-scope neighbour detector (when it has "
                                                   "one); false: only its probability threshold")
    builtin_entities: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BUILTINS),
        description="built-in entity extractors, the first listed winning an overlap (amount, number, date, time, "
                    "email, phone, url, order_code, or package.module:Class); [] for none",
    )
    entity_patterns: list[str] = Field(
        default_factory=list,
        description="patterns files (regexes, lookup tables, synonyms); relative paths start at the config file's folder",
    )

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        """A name of :data:`csbot.plugins.NLU_BACKENDS` or a dotted path (resolved when the model loads)."""
        if NLU_BACKENDS.is_known(value) or "." in value or ":" in value:
            return value
        raise PydanticCustomError(
            "unknown_plugin", "must be one of {known}, or a dotted path package.module:Class",
            {"known": ", ".join(NLU_BACKENDS.names())},
        )

    @field_validator("builtin_entities")
    @classmethod
    def _known_extractors(cls, value: list[str]) -> list[str]:
        """Each a name of :data:`~nlu.extractors.base.ENTITY_EXTRACTORS` or a dotted path, none twice."""
        for name in value:
            if not (ENTITY_EXTRACTORS.is_known(name) or "." in name or ":" in name):
                raise PydanticCustomError(
                    "unknown_plugin", "unknown extractor {name}: must be one of {known}, or a dotted path "
                    "package.module:Class", {"name": repr(name), "known": ", ".join(ENTITY_EXTRACTORS.names())},
                )
        if len(set(value)) != len(value):
            raise PydanticCustomError("duplicate", "an extractor is listed twice", {})
        return value
