"""Vector index backends (flat, HNSW, IVF), chosen by name or by corpus size.

The kinds are the entries of :data:`csbot.plugins.VECTOR_INDEXES` (``retrieval.index_type``); a dotted
path to a :class:`VectorIndex` subclass of one's own works as a kind too.
"""

from __future__ import annotations

from csbot.plugins import VECTOR_INDEXES
from retrieval.config import RetrievalConfig

from .base import VectorIndex
from .flat import FlatIndex
from .hnsw import HNSWIndex
from .ivf import IVFIndex


def index_kinds() -> list[str]:
    """The built-in index kinds, in registry order."""
    return VECTOR_INDEXES.names()


def choose_kind(config: RetrievalConfig, size: int) -> str:
    """The configured index type, or for ``auto``: exact up to ``flat_max`` records, else the approximate one."""
    if config.index_type != "auto":
        return config.index_type
    return "flat" if size <= config.flat_max else config.approximate


def create_vector_index(kind: str, dimension: int, config: RetrievalConfig, expected_size: int = 0) -> VectorIndex:
    """A new empty index of ``kind``; an unknown kind raises ConfigError naming the setting and the known ones."""
    backend = VECTOR_INDEXES.resolve(kind)
    return backend(dimension, config, expected_size)


__all__ = [
    "FlatIndex",
    "HNSWIndex",
    "IVFIndex",
    "VectorIndex",
    "choose_kind",
    "create_vector_index",
    "index_kinds",
]
