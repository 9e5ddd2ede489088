"""Exact inner-product search: every vector scored; best for up to some tens of thousands of records."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import VectorIndex


class FlatIndex(VectorIndex):
    """faiss ``IndexFlatIP``: exact, no training, no tuning."""

    kind = "flat"

    def _new_faiss_index(self, training: np.ndarray | None) -> Any:
        import faiss

        return faiss.IndexFlatIP(self.dimension)

    def _search_parameters(self, selector: Any) -> Any:
        import faiss

        return None if selector is None else faiss.SearchParameters(sel=selector)
