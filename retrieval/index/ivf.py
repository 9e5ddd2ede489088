"""Approximate search over inverted lists: trained on the first vectors added, GPU-capable."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from .base import VectorIndex

log = logging.getLogger(__name__)


class IVFIndex(VectorIndex):
    """faiss ``IndexIVFFlat`` with inner product; ``ivf.nlist`` cells (about 4·√n), ``ivf.nprobe`` visited."""

    kind = "ivf"

    def _nlist(self, available: int) -> int:
        wanted = self.config.ivf.nlist or int(4 * math.sqrt(max(self.expected_size, available, 1)))
        return max(1, min(wanted, available // 39 or 1))  # faiss wants ~39 training points a cell

    def _new_faiss_index(self, training: np.ndarray | None) -> Any:
        import faiss

        nlist = self._nlist(0 if training is None else len(training))
        quantizer = faiss.IndexFlatIP(self.dimension)
        index = faiss.IndexIVFFlat(quantizer, self.dimension, nlist, faiss.METRIC_INNER_PRODUCT)
        if training is not None and len(training):
            log.info("training the IVF index: %d cells on %d vectors", nlist, len(training))
            index.train(training)
        index.nprobe = self.config.ivf.nprobe
        return index

    def _prepare(self, index: Any) -> None:
        import faiss

        index.nprobe = self.config.ivf.nprobe
        if index.is_trained and index.direct_map.type == faiss.DirectMap.NoMap:
            index.make_direct_map()

    def _search_parameters(self, selector: Any) -> Any:
        import faiss

        return faiss.SearchParametersIVF(nprobe=self.config.ivf.nprobe, sel=selector)
