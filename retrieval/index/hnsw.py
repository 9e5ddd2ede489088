"""Approximate search on an HNSW graph: sub-millisecond queries over a million records, no training."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import VectorIndex


class HNSWIndex(VectorIndex):
    """faiss ``IndexHNSWFlat`` with inner product; ``hnsw.m``, ``ef_construction``, ``ef_search`` in config."""

    kind = "hnsw"
    gpu_capable = False  # faiss has no GPU HNSW; GpuPlacement logs that once and stays on the CPU

    def _new_faiss_index(self, training: np.ndarray | None) -> Any:
        import faiss

        cfg = self.config.hnsw
        index = faiss.IndexHNSWFlat(self.dimension, cfg.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = cfg.ef_construction
        index.hnsw.efSearch = cfg.ef_search
        return index

    def _search_parameters(self, selector: Any) -> Any:
        import faiss

        return faiss.SearchParametersHNSW(efSearch=self.config.hnsw.ef_search, sel=selector)
