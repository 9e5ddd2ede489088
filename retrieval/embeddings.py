"""Sentence embeddings for questions: a sentence-transformers model, offline, normalised for cosine search."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from csbot.devices import resolve_device
from csbot.encoders import DEFAULT_ENCODER, encoder_load_error, resolve_encoder

log = logging.getLogger(__name__)

#: Texts encoded per progress update; sentence-transformers sorts each chunk by length itself.
CHUNK = 2048


class Embedder:
    """Encodes texts to unit vectors, so inner product is cosine similarity; safe to call from threads.

    ``model`` is the default ``all-MiniLM-L6-v2`` (the packaged copy), any sentence-transformers name, or a
    local directory. On CUDA it runs in half precision.
    """

    def __init__(self, model: str = DEFAULT_ENCODER, device: str = "auto", batch_size: int = 64) -> None:
        from sentence_transformers import SentenceTransformer

        self.name = model
        self.source = resolve_encoder(model)
        self.device = resolve_device(device)
        self.batch_size = batch_size
        try:
            self.model = SentenceTransformer(self.source, device=self.device)
        except (OSError, ValueError) as exc:
            raise encoder_load_error(model, exc) from exc
        self.prepare_for_inference()
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dimension = int(dimension() or 0)
        self._lock = threading.Lock()

    def encode(
        self, texts: Sequence[str], batch_size: int | None = None, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """A ``(len(texts), dimension)`` float32 array of unit vectors; ``progress`` gets each chunk's size."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        out = []
        with self._lock:
            for start in range(0, len(texts), CHUNK):
                chunk = list(texts[start : start + CHUNK])
                vectors = self.model.encode(
                    chunk,
                    batch_size=batch_size or self.batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
                out.append(np.asarray(vectors, dtype=np.float32))
                if progress is not None:
                    progress(len(chunk))
        return np.ascontiguousarray(np.concatenate(out))

    def prepare_for_inference(self) -> None:
        """Evaluation mode, and half precision on CUDA (fine-tuning switches back to fp32 while it runs)."""
        if self.device.startswith("cuda"):
            self.model.half()
        self.model.eval()

    def save(self, directory: Path) -> None:
        """Write the model (e.g. after fine-tuning) as a sentence-transformers directory, in fp32."""
        with self._lock:
            self.model.float()
            try:
                self.model.save(str(directory))
            finally:
                self.prepare_for_inference()
