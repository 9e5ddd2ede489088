"""Out-of-scope detection without out-of-scope data: how close a message is to the training examples.

A company has no examples of what its customers will ask that is not about its business, so the detector
learns from the in-scope data alone. The fine-tuned encoder places messages of the trained intents close to
their training examples; a message about the bus timetable lands far from all of them, however confident
the intent head is (a softmax always sums to one). The bank keeps the L2-normalised pooled vectors of the
training examples (at most ``max_per_intent`` per intent, sampled with a seed); a message's score is the
mean cosine similarity to its ``k`` nearest vectors. The threshold is chosen on dev messages, which the
model never trained on, as the score that keeps ``accept_rate`` of them (a rule, not a tuned number);
below it a message is out of scope.

Saved beside the weights as ``neighbours.npy`` (float16) and described in ``calibration.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: The file of the bank in a model directory.
BANK_FILE = "neighbours.npy"


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def sample_per_intent(intents: Sequence[str], max_per_intent: int, seed: int = 0) -> np.ndarray:
    """Row indices keeping at most ``max_per_intent`` examples of each intent, chosen at random with ``seed``,
    in their original order."""
    rng = np.random.default_rng(seed)
    by_intent: dict[str, list[int]] = {}
    for row, intent in enumerate(intents):
        by_intent.setdefault(intent, []).append(row)
    keep: list[int] = []
    for rows in by_intent.values():
        if len(rows) > max_per_intent:
            rows = sorted(rng.choice(rows, size=max_per_intent, replace=False).tolist())
        keep.extend(rows)
    return np.array(sorted(keep), dtype=np.int64)


@dataclass
class NeighbourBank:
    """Normalised pooled vectors of training examples; :meth:`scores` says how close messages are to them."""

    vectors: np.ndarray
    k: int = 1

    def __post_init__(self) -> None:
        self.vectors = normalise(self.vectors)
        if self.vectors.ndim != 2 or len(self.vectors) == 0:
            raise ValueError("a neighbour bank needs at least one vector")
        self.k = max(1, min(int(self.k), len(self.vectors)))

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def scores(self, pooled: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
        """The mean cosine similarity of each pooled vector to its ``k`` nearest bank vectors (higher: closer).

        ``exclude`` (rows x bank, boolean) leaves bank vectors out of a row's neighbours: calibration uses it so a
        dev message that is also a training example is not scored against itself."""
        pooled = normalise(np.atleast_2d(pooled))
        if pooled.shape[1] != self.dim:
            raise ValueError(f"pooled vectors of size {pooled.shape[1]} against a bank of size {self.dim}")
        sims = pooled @ self.vectors.T
        if exclude is not None:
            sims = np.where(exclude, -np.inf, sims)
        if self.k == 1:
            return sims.max(axis=1)
        top = np.partition(sims, -self.k, axis=1)[:, -self.k:]
        return top.mean(axis=1)

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / BANK_FILE
        np.save(path, self.vectors.astype(np.float16), allow_pickle=False)
        return path

    @classmethod
    def load(cls, directory: str | Path, k: int = 1) -> NeighbourBank:
        """The bank saved in ``directory``; ``ValueError`` when the file is not a 2-D array of numbers."""
        array = np.load(Path(directory) / BANK_FILE, allow_pickle=False)
        if array.ndim != 2 or not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"expected a 2-D float array, got {array.dtype} of shape {array.shape}")
        return cls(array.astype(np.float32), k)


__all__ = ["BANK_FILE", "NeighbourBank", "normalise", "sample_per_intent"]
