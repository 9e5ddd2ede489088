"""The vector index interface: unit vectors under stable int64 ids, inner-product (cosine) search.

Every backend keeps the same bookkeeping: ``labels[i]`` is the external id of the i-th vector faiss
holds, ``-1`` once removed. Removal is a tombstone, honoured at search time by an id selector, so no
backend needs a rebuild to forget a record; :meth:`VectorIndex.compact` rebuilds when tombstones pile up.
On a GPU the search runs on a compacted copy, since faiss GPU indexes take no selectors.
"""

from __future__ import annotations

import abc
import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from csbot.errors import ArtefactError, RetrievalError
from retrieval.config import RetrievalConfig

from .gpu import GpuPlacement

log = logging.getLogger(__name__)

VECTORS = "vectors.faiss"
LABELS = "labels.npy"


class VectorIndex(abc.ABC):
    """A faiss index of one kind plus the id bookkeeping; subclasses say how to build and search it."""

    kind: ClassVar[str]
    #: Whether faiss has a GPU version of this index type.
    gpu_capable: ClassVar[bool] = True

    def __init__(self, dimension: int, config: RetrievalConfig, expected_size: int = 0) -> None:
        self.dimension = dimension
        self.config = config
        self.expected_size = expected_size
        self.index: Any = None
        self.labels = np.zeros(0, dtype=np.int64)
        self._positions: dict[int, int] = {}
        self.gpu = GpuPlacement.choose(config.device, self.kind, self.gpu_capable)
        self._gpu_copy: Any = None
        self._gpu_labels = np.zeros(0, dtype=np.int64)
        self._selector_cache: tuple[Any, np.ndarray] | None = None

    # -- what a backend defines ----------------------------------------------------------------
    @abc.abstractmethod
    def _new_faiss_index(self, training: np.ndarray | None) -> Any:
        """A fresh, empty (trained where needed) faiss index for vectors like ``training``."""

    @abc.abstractmethod
    def _search_parameters(self, selector: Any) -> Any:
        """faiss search parameters for this kind (beam width, probes) with an optional id selector."""

    def _prepare(self, index: Any) -> None:  # an optional hook
        """Adjust a freshly built or loaded faiss index (e.g. a direct map for reconstruction)."""

    # -- adding, removing ----------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Vectors that can be found (removed ones excluded)."""
        return len(self._positions)

    @property
    def deleted(self) -> int:
        return int(len(self.labels) - len(self._positions))

    def __contains__(self, label: int) -> bool:
        return int(label) in self._positions

    def add(self, vectors: np.ndarray, labels: np.ndarray) -> None:
        """Add unit vectors under new int64 ``labels`` (an id already present raises RetrievalError)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        labels = np.asarray(labels, dtype=np.int64)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension or len(vectors) != len(labels):
            raise RetrievalError(f"expected {len(labels)} vectors of dimension {self.dimension}, got {vectors.shape}")
        clash = [int(x) for x in labels if int(x) in self._positions]
        if clash or len(set(labels.tolist())) != len(labels):
            raise RetrievalError(f"ids already in the index: {clash[:5] or 'duplicates in the batch'}")
        if self.index is None or not self.index.is_trained:  # untrained: saved after every vector was removed
            self.initialise(vectors)
        start = len(self.labels)
        self.index.add(vectors)
        self._prepare(self.index)
        self.labels = np.concatenate([self.labels, labels])
        self._positions.update({int(x): start + i for i, x in enumerate(labels)})
        self._invalidate()

    def initialise(self, training: np.ndarray) -> None:
        """Create the faiss index, trained on ``training`` where the kind needs it (IVF)."""
        self.index = self._new_faiss_index(np.ascontiguousarray(training, dtype=np.float32))
        self._prepare(self.index)

    def remove(self, labels: np.ndarray | list[int]) -> int:
        """Forget these ids (unknown ones are ignored); returns how many were removed."""
        removed = 0
        for label in labels:
            position = self._positions.pop(int(label), None)
            if position is not None:
                self.labels[position] = -1
                removed += 1
        if removed:
            self._invalidate()
            if self.deleted > max(1000, len(self.labels) // 4):
                self.compact()
        return removed

    def reconstruct(self, labels: list[int]) -> np.ndarray:
        """The stored vectors of these ids."""
        out = np.zeros((len(labels), self.dimension), dtype=np.float32)
        for row, label in enumerate(labels):
            out[row] = self.index.reconstruct(self._positions[int(label)])
        return out

    def alive_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Every live vector and its id, in insertion order."""
        positions = np.flatnonzero(self.labels >= 0)
        vectors = np.zeros((len(positions), self.dimension), dtype=np.float32)
        if len(positions):
            vectors[:] = self.index.reconstruct_batch(positions.astype(np.int64))
        return vectors, self.labels[positions]

    def compact(self) -> None:
        """Rebuild without the removed vectors (ids are kept)."""
        vectors, labels = self.alive_vectors()
        log.info("compacting the %s index: %d live, %d removed", self.kind, len(labels), self.deleted)
        self.index, self.labels, self._positions = None, np.zeros(0, dtype=np.int64), {}
        if len(labels):
            self.add(vectors, labels)
        self._invalidate()

    # -- searching -----------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores (cosine) and ids, each ``(len(queries), k)``, best first; missing hits have id -1."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if self.index is None or self.size == 0 or len(queries) == 0:
            return np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64)
        if self.gpu.enabled:
            index, labels, params = self._gpu_index(), self._gpu_labels, None
        else:
            index, labels, params = self.index, self.labels, self._search_parameters(self._selector())
        scores, positions = index.search(queries, k, params=params) if params is not None else index.search(queries, k)
        ids = np.where(positions >= 0, labels[np.clip(positions, 0, None)], -1)
        scores = np.where(ids >= 0, scores, -np.inf).astype(np.float32)
        return scores, ids.astype(np.int64)

    def _selector(self) -> Any:
        if self.deleted == 0:
            return None
        if self._selector_cache is None:
            import faiss

            bitmap = np.packbits(self.labels >= 0, bitorder="little")
            self._selector_cache = (faiss.IDSelectorBitmap(len(self.labels), faiss.swig_ptr(bitmap)), bitmap)
        return self._selector_cache[0]

    def _gpu_index(self) -> Any:
        if self._gpu_copy is None:
            if self.deleted:
                self.compact()
            self._gpu_copy = self.gpu.copy_to_gpu(self.index)
            self._gpu_labels = self.labels.copy()
        return self._gpu_copy

    def _invalidate(self) -> None:
        self._selector_cache = None
        self._gpu_copy = None

    # -- saving --------------------------------------------------------------------------------
    def memory_bytes(self) -> int:
        """Bytes the serialised faiss index takes (vectors plus structure)."""
        import faiss

        return 0 if self.index is None else int(faiss.serialize_index(self.index).nbytes) + self.labels.nbytes

    def save(self, directory: Path) -> list[str]:
        """Write the CPU index and the ids; returns the file names written."""
        import faiss

        if self.index is None:
            self.index = self._new_faiss_index(None)
        faiss.write_index(self.index, str(directory / VECTORS))
        np.save(directory / LABELS, self.labels, allow_pickle=False)
        return [VECTORS, LABELS]

    def load(self, directory: Path) -> None:
        """Read what :meth:`save` wrote; unreadable files raise ArtefactError naming them."""
        import faiss

        try:
            self.index = faiss.read_index(str(directory / VECTORS))
        except RuntimeError as exc:
            raise ArtefactError(f"cannot read the faiss index: {str(exc).splitlines()[0]}", directory / VECTORS) from exc
        try:
            self.labels = np.load(directory / LABELS, allow_pickle=False).astype(np.int64)
        except (OSError, ValueError) as exc:
            raise ArtefactError(f"cannot read the ids: {exc}", directory / LABELS) from exc
        if self.index.d != self.dimension:
            raise ArtefactError(f"index has dimension {self.index.d}, expected {self.dimension}", directory / VECTORS)
        if self.index.ntotal != len(self.labels):
            raise ArtefactError(
                f"{self.index.ntotal} vectors but {len(self.labels)} ids (the index is truncated or mixed up)",
                directory / LABELS,
            )
        expected = type(self._new_faiss_index(None))
        if not isinstance(self.index, expected):
            raise ArtefactError(
                f"holds a faiss {type(self.index).__name__}, not the {expected.__name__} of the {self.kind!r} index "
                "the manifest names (the files do not belong together)", directory / VECTORS,
            )
        try:
            self._prepare(self.index)
        except (RuntimeError, AttributeError, TypeError, ValueError) as exc:
            raise ArtefactError(f"cannot use the faiss index as a {self.kind!r} index: {exc}", directory / VECTORS) from exc
        self._positions = {int(x): i for i, x in enumerate(self.labels) if x >= 0}
        self._invalidate()

    def describe(self) -> dict[str, Any]:
        """Kind, sizes and placement, for manifests and ``csbot index stats``."""
        return {"type": self.kind, "size": self.size, "removed": self.deleted, "dimension": self.dimension,
                "device": "cuda" if self.gpu.enabled else "cpu"}
