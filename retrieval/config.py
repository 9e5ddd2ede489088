"""Retrieval options: section ``retrieval`` of ``configs/default.yaml``, overridden by flags."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from csbot.plugins import VECTOR_INDEXES


class HNSWConfig(BaseModel):
    """HNSW graph shape: more links and a wider search beam buy recall with memory and time."""

    model_config = ConfigDict(extra="forbid")

    m: int = Field(32, ge=4, le=128, description="links per node")
    ef_construction: int = Field(80, ge=8)
    ef_search: int = Field(96, ge=1)


class IVFConfig(BaseModel):
    """Inverted lists: ``nlist`` cells (default about 4·√n), ``nprobe`` of them visited per query."""

    model_config = ConfigDict(extra="forbid")

    nlist: int | None = Field(None, ge=1)
    nprobe: int = Field(32, ge=1)


class HybridConfig(BaseModel):
    """Lexical (BM25) score fused with the dense one, so exact tokens such as order numbers count."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    weight: float = Field(0.2, ge=0, le=1, description="rank score = cosine + weight * lexical share of the query IDF matched")
    candidates: int = Field(50, ge=1, description="dense and lexical candidates re-ranked per query")
    k1: float = Field(1.2, ge=0)
    b: float = Field(0.75, ge=0, le=1)


class FinetuneConfig(BaseModel):
    """Contrastive fine-tuning of the embedding model on the Q&A pairs (``--finetune``)."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(1, ge=1)
    batch_size: int = Field(64, ge=2)
    learning_rate: float = Field(3e-5, gt=0)
    scale: float = Field(20.0, gt=0, description="similarity scale (inverse temperature) of the loss")
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    seed: int = 13


class RetrievalConfig(BaseModel):
    """Everything that shapes the Q&A index and its search."""

    model_config = ConfigDict(extra="forbid")

    model: str = "all-MiniLM-L6-v2"
    index_type: str = Field("auto", description="auto | flat | hnsw | ivf | a VectorIndex subclass as package.module:Class")
    flat_max: int = Field(20_000, ge=0, description="auto: exact search up to this many records")
    approximate: Literal["hnsw", "ivf"] = "hnsw"
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    k: int = Field(5, ge=1)
    threshold: float = Field(0.6, ge=-1, le=2, description="a top hit below this is not given as an answer, "
                             "for an index that could not choose its own (too few held-out pairs, or built before)")
    accept_rate: float = Field(0.97, gt=0, le=1, description="the index's own threshold, chosen at build, accepts "
                               "this share of its held-out in-scope questions")
    answer_precision: float = Field(0.95, ge=0, le=1, description="...and answers its held-out questions right this "
                                    "often (the higher of the two thresholds; 0: acceptance only)")
    calibration_min_pairs: int = Field(20, ge=1, description="fewer held-out pairs than this: keep `threshold`")
    calibration_queries: int = Field(2000, ge=1, description="held-out questions searched at most (a seeded sample)")
    ambiguity_margin: float = Field(0.03, ge=0, description="closer than this between hits = ambiguous")
    merge_threshold: float = Field(0.97, ge=0, le=1.01, description="cosine at which questions merge at build")
    batch_size: int = Field(64, ge=1)
    hnsw: HNSWConfig = HNSWConfig()
    ivf: IVFConfig = IVFConfig()
    hybrid: HybridConfig = HybridConfig()
    finetune: FinetuneConfig = FinetuneConfig()

    @field_validator("index_type")
    @classmethod
    def _known_index_type(cls, value: str) -> str:
        """``auto``, a name of :data:`csbot.plugins.VECTOR_INDEXES` or a dotted path (resolved when built)."""
        if value == "auto" or VECTOR_INDEXES.is_known(value) or "." in value or ":" in value:
            return value
        raise PydanticCustomError(
            "unknown_plugin", "must be one of auto, {known}, or a dotted path package.module:Class",
            {"known": ", ".join(VECTOR_INDEXES.names())},
        )
