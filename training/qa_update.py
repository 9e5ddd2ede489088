"""A new version of the Q&A index with reviewed pairs added or corrected, built beside the current one.

The current index directory is loaded, never changed: records whose id it already holds are replaced (a
corrected answer), the others added without a rebuild (:meth:`retrieval.qa_index.QAIndex.add`, which chooses the
answer threshold again), and the result is saved as a new directory, a new version for the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from retrieval.config import RetrievalConfig
from retrieval.records import QARecord


@dataclass(frozen=True)
class IndexUpdate:
    """The new index directory, how many records it gained and replaced, and its version."""

    index_dir: Path
    added: int
    replaced: int
    version: str


def update_index(base_dir: Path | None, records: list[QARecord], config: RetrievalConfig, out_dir: Path) -> IndexUpdate:
    """Save the index of ``base_dir`` (a new one when None) with ``records`` added or replaced, in ``out_dir``."""
    from retrieval.qa_index import QAIndex

    if base_dir is None or not (Path(base_dir) / "csbot-index.json").is_file():
        index = QAIndex.build(records, config)
        replaced = 0
    else:
        index = QAIndex.load(base_dir, config)
        known = [r.id for r in records if r.id in index.labels_by_id]
        if known:
            index.remove(known)
        index.add(records)
        replaced = len(known)
    index.save(out_dir)
    return IndexUpdate(Path(out_dir), len(records) - replaced, replaced, index.version)


__all__ = ["IndexUpdate", "update_index"]
