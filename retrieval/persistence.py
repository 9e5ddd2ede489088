"""Saving and loading a Q&A index directory: the manifest, the records file, the vectors, checksums.

Layout::

    INDEX_DIR/
      csbot-index.json   manifest: kind, format, version and creation time (see csbot.artefacts), embedding
                         model and dimension, counts, index type, checksums, and the answer threshold
                         the index chose (threshold, threshold_method, threshold_pairs, threshold_target,
                         threshold_precision, threshold_top_hit_accuracy)
      vectors.faiss      the faiss index (CPU form)
      labels.npy         the int64 id of each stored vector (-1 once removed)
      records.jsonl      one record a line with its int id ("label")
      encoder/           the fine-tuned embedding model, when built with --finetune

:class:`~retrieval.qa_index.QAIndex` ``.save``, ``.load`` and ``.edit`` use these functions; every failure to
read names the file at fault. The manifest's schema is :class:`IndexManifest`. Writing refuses an existing
directory that is neither empty nor a Q&A index (:func:`csbot.artefact_dirs.check_out_dir`); an edit (load, change,
save) holds :func:`index_lock`, the lock file ``.INDEX_DIR.lock`` beside the directory, so concurrent edits
queue instead of losing one another's changes.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from csbot.artefact_dirs import artefact_lock, atomic_directory
from csbot.artefacts import ArtefactInfo, ArtefactManifest, check_files, read_manifest, sha256_file, stamp, write_json
from csbot.encoders import DEFAULT_ENCODER
from csbot.errors import ArtefactError, ConfigError, EmbeddingMismatchError
from retrieval.config import RetrievalConfig
from retrieval.index import VectorIndex, create_vector_index
from retrieval.records import QARecord

MANIFEST = "csbot-index.json"
RECORDS = "records.jsonl"
ENCODER_DIR = "encoder"
KIND = "qa-index"
_REBUILD = "build the index again"
_DEFAULT_ALIASES = {DEFAULT_ENCODER, f"sentence-transformers/{DEFAULT_ENCODER}", "default"}


class IndexManifest(ArtefactManifest):
    """The schema of ``csbot-index.json``."""

    embedding_model: str = ""
    dimension: int = Field(gt=0)
    finetuned: bool = False
    count: int = Field(default=0, ge=0)
    questions: int = Field(default=0, ge=0)
    next_label: int | None = Field(default=None, ge=0)
    index_type: str = Field(default="flat", min_length=1)
    index_removed: int = Field(default=0, ge=0)
    #: The answer threshold the index chose at build (absent in an index saved before: the configured one).
    threshold: float | None = Field(default=None, ge=-1, le=2)
    threshold_method: Literal["held_out", "config"] | None = None
    threshold_pairs: int | None = Field(default=None, ge=0)
    threshold_target: float | None = Field(default=None, gt=0, le=1)
    threshold_precision: float | None = Field(default=None, ge=0, le=1)
    threshold_top_hit_accuracy: float | None = Field(default=None, ge=0, le=1)


def same_model(a: str, b: str) -> bool:
    """Whether two embedding model names mean the same model (aliases of the default count as one)."""
    return a == b or (a in _DEFAULT_ALIASES and b in _DEFAULT_ALIASES)


def write_index(
    out_dir: str | Path,
    vectors: VectorIndex,
    records: Mapping[int, QARecord],
    *,
    embedding_model: str,
    next_label: int,
    save_encoder: Callable[[Path], None] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], ArtefactInfo]:
    """Write an index directory atomically (a reader never sees a half-written one); the manifest and its info.

    ``save_encoder`` writes a fine-tuned embedding model into the directory it is given; None when the
    index uses the configured model as it is. ``extra`` adds fields to the manifest (the threshold choice).
    """
    out = Path(out_dir).resolve()
    with atomic_directory(out, kind=KIND) as tmp:
        files = vectors.save(tmp)
        with (tmp / RECORDS).open("w", encoding="utf-8") as handle:
            for label, record in sorted(records.items()):
                handle.write(json.dumps({"label": label, **record.to_dict()}, ensure_ascii=False) + "\n")
        files.append(RECORDS)
        if save_encoder is not None:
            save_encoder(tmp / ENCODER_DIR)
            files += [p.relative_to(tmp).as_posix() for p in sorted((tmp / ENCODER_DIR).rglob("*")) if p.is_file()]
        manifest = stamp({
            "kind": KIND,
            "embedding_model": embedding_model,
            "dimension": vectors.dimension,
            "finetuned": save_encoder is not None,
            "count": len(records),
            "questions": sum(1 + len(r.merged) for r in records.values()),
            "next_label": next_label,
            **{f"index_{k}": v for k, v in vectors.describe().items() if k in ("type", "removed")},
            **(extra or {}),
            "checksums": {name: sha256_file(tmp / name) for name in files},
        })
        write_json(tmp / MANIFEST, manifest)
    return manifest, ArtefactInfo.from_manifest(manifest, out / MANIFEST)


def read_info(index_dir: str | Path) -> tuple[dict[str, Any], ArtefactInfo]:
    """The manifest of a saved index and its :class:`~csbot.artefacts.ArtefactInfo` (version, creation time ...).

    An index saved in another artefact format raises IncompatibleArtefactError naming the manifest and both
    format numbers.
    """
    root = Path(index_dir)
    if not root.is_dir():
        raise ArtefactError("no such index directory", root)
    return read_manifest(root / MANIFEST, KIND, "Q&A index", _REBUILD, IndexManifest)


@contextlib.contextmanager
def index_lock(index_dir: str | Path) -> Iterator[Path]:
    """Hold the index's edit lock (``.NAME.lock`` beside it) for a load, change and save; other editors wait."""
    root = Path(index_dir)
    if not root.expanduser().resolve().parent.is_dir():
        raise ArtefactError("no such index directory", root)
    with artefact_lock(root) as lock:
        yield lock


def check_index(root: Path, manifest: Mapping[str, Any], configured_model: str, verify: bool = True) -> None:
    """The index was built with the configured embedding model, and its files are there (and intact)."""
    built_with = str(manifest.get("embedding_model", ""))
    if not same_model(built_with, configured_model):
        raise EmbeddingMismatchError(
            f"the index was built with embedding model {built_with!r} but {configured_model!r} is configured; "
            "configure the same model or build the index again",
            root / MANIFEST,
        )
    check_files(root, root / MANIFEST, manifest.get("checksums") or {}, verify=verify,
                hint="the index directory is incomplete; build it again")


def saved_dimension(root: Path, manifest: Mapping[str, Any]) -> int:
    """The dimension of the saved vectors, as the manifest gives it."""
    try:
        return int(manifest.get("dimension", 0))
    except (TypeError, ValueError) as exc:
        raise ArtefactError(f"invalid dimension {manifest.get('dimension')!r}", root / MANIFEST) from exc


def load_vectors(root: Path, manifest: Mapping[str, Any], config: RetrievalConfig) -> VectorIndex:
    """The saved vector index, of the type the manifest names; an unknown type is an ArtefactError naming it."""
    kind = str(manifest.get("index_type", "flat"))
    dimension = saved_dimension(root, manifest)
    try:
        vectors = create_vector_index(kind, dimension, config)
    except ConfigError as exc:
        raise ArtefactError(f"unknown index type {kind!r} ({exc}); {_REBUILD}", root / MANIFEST) from exc
    except (TypeError, ValueError, AttributeError, RuntimeError) as exc:  # a backend of one's own that fails
        raise ArtefactError(f"cannot create a {kind!r} index: {exc.__class__.__name__}: {exc}; {_REBUILD}",
                            root / MANIFEST) from exc
    vectors.load(root)
    return vectors


def read_records(path: Path) -> Iterator[tuple[int, QARecord]]:
    """Each saved record with its int label; a corrupt line raises ArtefactError naming the file and line."""
    if not path.is_file():
        raise ArtefactError("missing file (the index directory is incomplete; build it again)", path)
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                data = json.loads(line)
                label = int(data.pop("label"))
                record = QARecord.from_dict(data)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ArtefactError(f"line {number}: corrupt record: {exc}", path) from exc
            yield label, record


__all__ = [
    "ENCODER_DIR",
    "MANIFEST",
    "RECORDS",
    "IndexManifest",
    "check_index",
    "index_lock",
    "load_vectors",
    "read_info",
    "read_records",
    "same_model",
    "saved_dimension",
    "write_index",
]
