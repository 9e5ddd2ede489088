"""Vector index backends (flat, HNSW, IVF), chosen by name or by corpus size."""

from __future__ import annotations

from retrieval.config import RetrievalConfig

from .base import VectorIndex
from .flat import FlatIndex
from .hnsw import HNSWIndex
from .ivf import IVFIndex

BACKENDS: dict[str, type[VectorIndex]] = {"flat": FlatIndex, "hnsw": HNSWIndex, "ivf": IVFIndex}


def choose_kind(config: RetrievalConfig, size: int) -> str:
    """The configured index type, or for ``auto``: exact up to ``flat_max`` records, else the approximate one."""
    if config.index_type != "auto":
        return config.index_type
    return "flat" if size <= config.flat_max else config.approximate


def create_vector_index(kind: str, dimension: int, config: RetrievalConfig, expected_size: int = 0) -> VectorIndex:
    """A new empty index of ``kind``; an unknown kind raises ValueError listing the known ones."""
    try:
        backend = BACKENDS[kind]
    except KeyError:
        raise ValueError(f"unknown index type {kind!r}; known: {', '.join(BACKENDS)}") from None
    return backend(dimension, config, expected_size)


__all__ = ["BACKENDS", "FlatIndex", "HNSWIndex", "IVFIndex", "VectorIndex", "choose_kind", "create_vector_index"]
