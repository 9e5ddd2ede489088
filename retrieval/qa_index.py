"""The Q&A index: records, their question embeddings in a vector index, optional BM25, search with scores.

Saved as a directory (layout and manifest in :mod:`retrieval.persistence`); :meth:`QAIndex.edit` changes a
saved index under its lock file, so concurrent edits never lose one another's changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from csbot.artefacts import ArtefactInfo
from csbot.errors import ArtefactError, EmbeddingMismatchError, RetrievalError, UnknownRecordError
from retrieval import persistence
from retrieval.config import RetrievalConfig
from retrieval.embeddings import Embedder
from retrieval.index import VectorIndex, choose_kind, create_vector_index
from retrieval.lexical import BM25Index
from retrieval.mining import question_key
from retrieval.persistence import ENCODER_DIR, MANIFEST, RECORDS, same_model  # noqa: F401 (re-exported)
from retrieval.records import Hit, QARecord, SearchResult
from retrieval.thresholds import ThresholdChoice, choose_threshold

log = logging.getLogger(__name__)

#: Vectors compared at a time when merging near-identical questions at build.
MERGE_CHUNK = 1024

Progress = Callable[[str, int, int], None]  # (stage, advance, total)


class QAIndex:
    """Past questions and their answers, searchable by meaning (and by exact tokens with hybrid scoring)."""

    def __init__(self, config: RetrievalConfig | None = None, embedder: Embedder | None = None) -> None:
        self.config = config or RetrievalConfig()
        self._embedder = embedder
        self.records: dict[int, QARecord] = {}
        self.labels_by_id: dict[str, int] = {}
        self.vectors: VectorIndex | None = None
        self.lexical: BM25Index | None = None
        self.next_label = 0
        self.finetuned = False
        self.embedding_model = self.config.model
        self.manifest: dict[str, Any] = {}
        self.manifest_path: Path | None = None
        #: Version, creation time and manifest file, once saved or loaded (None for an index only in memory).
        self.info: ArtefactInfo | None = None
        self._expected_dimension: int | None = None
        self._lock = threading.RLock()
        #: How the answer threshold was chosen (at build, add and remove; from the manifest on load).
        self.threshold_choice: ThresholdChoice | None = None

    # -- identity --------------------------------------------------------------------------------
    @property
    def version(self) -> str:
        """The index's version id (``20261129T175012Z-3fa9c1d2``); empty for an index never saved."""
        return self.info.version if self.info is not None else ""

    @property
    def created(self) -> datetime | None:
        """When the index was saved (aware UTC datetime); None for an index never saved."""
        return self.info.created if self.info is not None else None

    @property
    def threshold(self) -> float:
        """The score a top hit needs to be given as an answer: the index's own (chosen on held-out questions)
        or, when it has none, the configured ``threshold``."""
        choice = self.threshold_choice
        return choice.value if choice is not None and choice.method == "held_out" else self.config.threshold

    def calibrate(self) -> ThresholdChoice:
        """Choose the answer threshold again from the records now held (:mod:`retrieval.thresholds`)."""
        with self._lock:
            self.threshold_choice = choose_threshold(self)
            log.info("%s", self.threshold_choice.describe())
            return self.threshold_choice

    # -- the embedding model ---------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        """The embedding model, loaded on first use."""
        if self._embedder is None:
            self._embedder = self._check_dimension(Embedder(self.config.model, self.config.device, self.config.batch_size))
        return self._embedder

    def _check_dimension(self, embedder: Embedder) -> Embedder:
        expected = self._expected_dimension
        if expected is not None and embedder.dimension != expected:
            raise EmbeddingMismatchError(
                f"the index holds {expected}-d vectors but the embedding model {embedder.name!r} makes "
                f"{embedder.dimension}-d ones", self.manifest_path or Path(MANIFEST),
            )
        return embedder

    # -- building --------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        records: Sequence[QARecord],
        config: RetrievalConfig | None = None,
        embedder: Embedder | None = None,
        progress: Progress | None = None,
    ) -> QAIndex:
        """An index over ``records`` with near-identical questions merged (their provenance kept)."""
        index = cls(config, embedder)
        if not records:
            raise RetrievalError("no Q&A records to index")
        seen: set[str] = set()
        for record in records:
            for record_id in (record.id, *(p.id for p in record.merged)):  # merged questions' ids too
                if record_id in seen:
                    raise RetrievalError(f"duplicate record id {record_id!r}: ids must be unique")
                seen.add(record_id)
        merged = index._merge_exact(records)
        texts = [r.question for r in merged]
        vectors = index.embedder.encode(texts, progress=(lambda n: progress("encode", n, len(texts))) if progress else None)
        kind = choose_kind(index.config, len(merged))
        index.vectors = create_vector_index(kind, index.embedder.dimension, index.config, len(merged))
        sample = vectors if len(vectors) <= 200_000 else vectors[np.random.default_rng(0).choice(len(vectors), 200_000, replace=False)]
        index.vectors.initialise(sample)
        index._add_merging(merged, vectors, progress)
        index.calibrate()
        log.info("built a %s index of %d entries from %d records", kind, index.vectors.size, len(records))
        return index

    def _merge_exact(self, records: Sequence[QARecord]) -> list[QARecord]:
        by_key: dict[str, QARecord] = {}
        for record in records:
            copy = QARecord.from_dict(record.to_dict())
            key = question_key(copy.question) or copy.question
            if key in by_key:
                by_key[key].absorb(copy)
            else:
                by_key[key] = copy
        return list(by_key.values())

    def _add_merging(self, records: list[QARecord], vectors: np.ndarray, progress: Progress | None) -> None:
        """Add in chunks; a question within ``merge_threshold`` of one already kept is absorbed by it."""
        threshold = self.config.merge_threshold
        assert self.vectors is not None
        for start in range(0, len(records), MERGE_CHUNK):
            chunk, chunk_vectors = records[start : start + MERGE_CHUNK], vectors[start : start + MERGE_CHUNK]
            keep = np.ones(len(chunk), dtype=bool)
            if threshold <= 1.0:
                if self.vectors.size:
                    scores, ids = self.vectors.search(chunk_vectors, 1)
                    for row in np.flatnonzero(scores[:, 0] >= threshold):
                        self.records[int(ids[row, 0])].absorb(chunk[row])
                        self._map_provenance(chunk[row], int(ids[row, 0]))
                        keep[row] = False
                sims = chunk_vectors @ chunk_vectors.T
                for row in range(len(chunk)):
                    if not keep[row]:
                        continue
                    earlier = np.flatnonzero(keep[:row] & (sims[row, :row] >= threshold))
                    if len(earlier):
                        chunk[int(earlier[0])].absorb(chunk[row])
                        keep[row] = False
            self._append([r for r, k in zip(chunk, keep, strict=True) if k], chunk_vectors[keep])
            if progress:
                progress("index", len(chunk), len(records))

    def _map_provenance(self, record: QARecord, label: int) -> None:
        self.labels_by_id.setdefault(record.id, label)
        for p in record.merged:
            self.labels_by_id.setdefault(p.id, label)

    def _append(self, records: list[QARecord], vectors: np.ndarray) -> list[int]:
        assert self.vectors is not None
        labels = list(range(self.next_label, self.next_label + len(records)))
        if not records:
            return labels
        self.vectors.add(vectors, np.asarray(labels, dtype=np.int64))
        self.next_label += len(records)
        for label, record in zip(labels, records, strict=True):
            self.records[label] = record
            self.labels_by_id[record.id] = label
            self._map_provenance(record, label)
            if self.lexical is not None:
                self.lexical.add(label, record.question)
        return labels

    # -- changing a built index ------------------------------------------------------------------
    def add(self, records: Sequence[QARecord], progress: Progress | None = None) -> list[str]:
        """Add records without a rebuild; their ids must be new. Returns the ids added."""
        with self._lock:
            ids = [i for r in records for i in (r.id, *(p.id for p in r.merged))]  # merged questions' ids too
            clash = [i for i in ids if i in self.labels_by_id]
            if clash:
                raise RetrievalError(f"record ids already in the index: {', '.join(clash[:5])} (remove them first)")
            if len(set(ids)) != len(ids):
                raise RetrievalError("duplicate record ids among the records to add")
            texts = [r.question for r in records]
            vectors = self.embedder.encode(texts, progress=(lambda n: progress("encode", n, len(texts))) if progress else None)
            if self.vectors is None:
                self.vectors = create_vector_index(choose_kind(self.config, len(records)), self.embedder.dimension, self.config)
            fresh = [QARecord.from_dict(r.to_dict()) for r in records]
            self._append(fresh, vectors)
            self.calibrate()
            return [r.id for r in fresh]

    def remove(self, ids: Iterable[str]) -> int:
        """Remove records by id, also ones merged into another entry; unknown ids raise UnknownRecordError."""
        with self._lock:
            ids = list(dict.fromkeys(ids))  # an id given twice is removed once
            unknown = [i for i in ids if i not in self.labels_by_id]
            if unknown:
                raise UnknownRecordError(f"no record with id {', '.join(repr(i) for i in unknown[:5])} in the index")
            removed = 0
            for record_id in ids:
                label = self.labels_by_id.pop(record_id)
                record = self.records.get(label)
                if record is None:
                    continue
                if record.id == record_id:
                    self._drop_entry(label, record, record_id)
                else:
                    record.merged = [p for p in record.merged if p.id != record_id]
                removed += 1
            if removed and self.records:
                self.calibrate()
            return removed

    def _drop_entry(self, label: int, record: QARecord, record_id: str) -> None:
        """Remove an index entry; a question merged into it takes its place under the same vector."""
        assert self.vectors is not None
        if record.merged:
            heir = record.merged[0]
            if self.lexical is not None:  # the entry's words change with its question
                self.lexical.remove(label, record.question)
            record.id, record.question, record.answer, record.source = heir.id, heir.question, heir.answer, heir.source
            record.merged = record.merged[1:]
            if self.lexical is not None:
                self.lexical.add(label, record.question)
            return
        del self.records[label]
        self.vectors.remove([label])
        if self.lexical is not None:
            self.lexical.remove(label, record.question)

    def get(self, record_id: str) -> QARecord:
        """The entry holding ``record_id`` (its own or one it absorbed)."""
        try:
            return self.records[self.labels_by_id[record_id]]
        except KeyError:
            raise UnknownRecordError(f"no record with id {record_id!r} in the index") from None

    def __len__(self) -> int:
        return len(self.records)

    # -- searching -------------------------------------------------------------------------------
    def _lexical(self) -> BM25Index:
        if self.lexical is None:
            hybrid = self.config.hybrid
            lexical = BM25Index(hybrid.k1, hybrid.b)
            for label, record in self.records.items():
                lexical.add(label, record.question)
            self.lexical = lexical
        return self.lexical

    def search(self, queries: Sequence[str] | str, k: int | None = None, hybrid: bool | None = None) -> list[SearchResult]:
        """The ``k`` best entries for each query, with cosine scores; batched (a bare string is one query)."""
        if isinstance(queries, str):
            queries = [queries]
        return self.search_vectors(list(queries), self.embedder.encode(list(queries)), k, hybrid)

    def search_vectors(
        self, queries: list[str], vectors: np.ndarray, k: int | None = None, hybrid: bool | None = None
    ) -> list[SearchResult]:
        """:meth:`search` with the query vectors already encoded (evaluations reuse them across variants)."""
        k = k or self.config.k
        use_hybrid = self.config.hybrid.enabled if hybrid is None else hybrid
        cfg = self.config
        with self._lock:
            if self.vectors is None or not self.records:
                return [SearchResult(q, [], self.threshold, cfg.ambiguity_margin) for q in queries]
            depth = max(k, cfg.hybrid.candidates) if use_hybrid else k
            threshold = self.threshold
            scores, ids = self.vectors.search(vectors, depth)
            lexical = self._lexical() if use_hybrid else None
            results = []
            for row, query in enumerate(queries):
                dense = {int(i): float(s) for i, s in zip(ids[row], scores[row], strict=True) if i >= 0}
                if lexical is None:
                    ranked = [(label, cos, cos, 0.0) for label, cos in dense.items()]
                else:
                    lex = dict(lexical.search(query, cfg.hybrid.candidates))
                    extra = [label for label in lex if label not in dense]
                    if extra:
                        for label, vec in zip(extra, self.vectors.reconstruct(extra), strict=True):
                            dense[label] = float(vec @ vectors[row])
                    lex.update(lexical.scores(query, [x for x in dense if x not in lex]))
                    weight = cfg.hybrid.weight
                    ranked = [(label, cos + weight * lex.get(label, 0.0), cos, lex.get(label, 0.0))
                              for label, cos in dense.items()]
                ranked.sort(key=lambda item: -item[1])
                hits = [Hit(self.records[label], cos, rank, lex_share) for label, rank, cos, lex_share in ranked[:k]]
                results.append(SearchResult(query, hits, threshold, cfg.ambiguity_margin))
            return results

    async def asearch(
        self, queries: Sequence[str] | str, k: int | None = None, hybrid: bool | None = None
    ) -> list[SearchResult]:
        """:meth:`search` in a worker thread, so the event loop never waits on the model or faiss."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: self.search(queries, k, hybrid))

    # -- saving and loading ----------------------------------------------------------------------
    def save(self, out_dir: str | Path) -> Path:
        """Write the index directory atomically (a reader never sees a half-written one)."""
        with self._lock:
            if self.vectors is None:
                raise RetrievalError("nothing to save: the index is empty")
            self.manifest, self.info = persistence.write_index(
                out_dir, self.vectors, self.records, embedding_model=self.embedding_model,
                next_label=self.next_label, save_encoder=self.embedder.save if self.finetuned else None,
                extra=self.threshold_choice.to_manifest() if self.threshold_choice is not None else None,
            )
            self.manifest_path = self.info.path
            return self.info.path.parent

    @classmethod
    def load(
        cls, index_dir: str | Path, config: RetrievalConfig | None = None, embedder: Embedder | None = None, verify: bool = True
    ) -> QAIndex:
        """Load a saved index; a corrupt, truncated or mismatched file raises an error naming it."""
        root = Path(index_dir)
        manifest, info = persistence.read_info(root)
        index = cls(config, embedder)
        index.manifest_path = root / MANIFEST
        persistence.check_index(root, manifest, index.config.model, verify)
        index.embedding_model = str(manifest.get("embedding_model", ""))
        index.finetuned = bool(manifest.get("finetuned"))
        index._expected_dimension = persistence.saved_dimension(root, manifest)
        if index.finetuned and embedder is None:
            index._embedder = Embedder(str(root / ENCODER_DIR), index.config.device, index.config.batch_size)
        if index._embedder is not None:
            index._check_dimension(index._embedder)
        index.vectors = persistence.load_vectors(root, manifest, index.config)
        for label, record in persistence.read_records(root / RECORDS):
            index.records[label] = record
            index.labels_by_id[record.id] = label
            index._map_provenance(record, label)
        try:
            index.next_label = int(manifest.get("next_label", max(index.records, default=-1) + 1))
        except (TypeError, ValueError) as exc:
            raise ArtefactError(f"invalid next_label {manifest.get('next_label')!r}", root / MANIFEST) from exc
        index.manifest, index.info = manifest, info
        index.threshold_choice = ThresholdChoice.from_manifest(manifest)  # None when saved before: the config's
        missing = [label for label in index.records if label not in index.vectors]
        if missing or len(index.records) != index.vectors.size:
            raise ArtefactError(
                f"{len(index.records)} records but {index.vectors.size} vectors (the files do not belong together)",
                root / RECORDS,
            )
        return index

    @classmethod
    @contextlib.contextmanager
    def edit(
        cls, index_dir: str | Path, config: RetrievalConfig | None = None, embedder: Embedder | None = None,
        verify: bool = True,
    ) -> Iterator[QAIndex]:
        """Load a saved index under its edit lock, yield it to change, and save it back when the block ends.

        Another process (or thread) editing the same index waits for the lock, so two concurrent additions
        both land. An exception in the block leaves the saved index as it was.
        """
        with persistence.index_lock(index_dir):
            index = cls.load(index_dir, config, embedder, verify)
            yield index
            index.save(index_dir)

    def stats(self) -> dict[str, Any]:
        """Counts, index type and placement, memory, the embedding model and the version, for ``csbot index stats``."""
        assert self.vectors is not None
        answers = {r.answer for r in self.records.values()}
        choice = self.threshold_choice
        return {
            "entries": len(self.records),
            "questions": sum(1 + len(r.merged) for r in self.records.values()),
            "distinct_answers": len(answers),
            "embedding_model": self.embedding_model,
            "finetuned": self.finetuned,
            "version": self.version,
            "created": self.info.created_iso if self.info is not None else "",
            "index_bytes": self.vectors.memory_bytes(),
            "threshold": self.threshold,
            "threshold_method": choice.method if choice is not None else "config",
            "threshold_pairs": choice.pairs if choice is not None else None,
            "threshold_target": choice.target if choice is not None else None,
            **{f"index_{k}": v for k, v in self.vectors.describe().items()},
        }
