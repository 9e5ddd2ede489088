"""Placing a faiss index on a GPU when faiss can and one is visible; otherwise the CPU, said in one log line."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


def faiss_gpu_count() -> int:
    """GPUs faiss can use (0 for a CPU-only faiss build)."""
    import faiss

    get = getattr(faiss, "get_num_gpus", None)
    try:
        return int(get()) if get is not None and hasattr(faiss, "StandardGpuResources") else 0
    except RuntimeError:
        return 0


@dataclass
class GpuPlacement:
    """Whether searches run on a GPU, and the faiss resources when they do."""

    enabled: bool = False
    device_id: int = 0
    resources: Any = None

    @classmethod
    def choose(cls, device: str, kind: str, gpu_capable: bool) -> GpuPlacement:
        """``auto`` uses a GPU when there is one; ``cuda`` without one falls back to the CPU with one log line."""
        if device == "cpu":
            return cls(False)
        count = faiss_gpu_count()
        wanted = device.startswith("cuda")
        if count == 0:
            if wanted:
                log.warning("faiss sees no CUDA GPU (CPU-only faiss or no device); the %s index runs on the CPU", kind)
            return cls(False)
        if not gpu_capable:
            if wanted:
                log.warning("faiss has no GPU %s index; it runs on the CPU", kind)
            return cls(False)
        device_id = int(device.split(":", 1)[1]) if ":" in device else 0
        import faiss

        return cls(True, device_id, faiss.StandardGpuResources())

    def copy_to_gpu(self, index: Any) -> Any:
        """A GPU copy of a CPU index, for searching."""
        import faiss

        return faiss.index_cpu_to_gpu(self.resources, self.device_id, index)
