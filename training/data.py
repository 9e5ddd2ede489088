"""Training data as a whole: ``PATH@SELECTOR`` specs, loading, splitting, fingerprints, JSONL out.

A spec is a path, optionally followed by ``@SELECTOR`` that picks part of the data: CLINC150 split
names (``data_full_train_val.json@val,oos_val``; default ``train,oos_train``) or NLU++ folds
(``nlupp/banking@0-7``). A spec that names an existing path as a whole is never split at ``@``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import numbers
import os
import random
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from csbot.errors import DataError, EntitySpanError, TrainingError
from nlu.schema import Example
from training.importers import load_examples

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataSpec:
    """One data source: a path and an optional selector of its parts (splits, folds)."""

    path: Path
    selector: str | None = None

    @classmethod
    def parse(cls, spec: str | Path | DataSpec) -> DataSpec:
        """Read ``PATH`` or ``PATH@SELECTOR``; a ``Path`` or an existing path's name is taken whole."""
        if isinstance(spec, DataSpec):
            return spec
        if isinstance(spec, Path):
            return cls(spec)
        text = str(spec).strip()
        if not text:
            raise DataError("empty data spec (expected PATH or PATH@SELECTOR)")
        if "@" not in text or Path(text).exists():
            return cls(Path(text))
        path, _, selector = text.rpartition("@")
        if not path:
            raise DataError(f"data spec {text!r} has a selector but no path")
        if not selector.strip():
            raise DataError(f"data spec {text!r} has an empty selector after '@'", path)
        return cls(Path(path), selector.strip())

    def __str__(self) -> str:
        return f"{self.path}@{self.selector}" if self.selector is not None else str(self.path)


def load_dataset(
    specs: Sequence[str | Path | DataSpec],
    format: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
) -> list[Example]:
    """Load every spec (``PATH`` or ``PATH@SELECTOR``) and concatenate the examples in the order given.

    ``format`` applies to every spec (detected per spec when None); the column options apply to CSV.
    """
    if isinstance(specs, (str, Path)):
        specs = [specs]
    if not specs:
        raise DataError("no training data given")
    options = {
        key: value for key, value in (("text_column", text_column), ("label_column", label_column)) if value
    }
    examples: list[Example] = []
    for raw in specs:
        spec = DataSpec.parse(raw)
        for path in expand_glob(spec.path):
            examples.extend(load_examples(path, format, selector=spec.selector, **options))
    logger.info("loaded %d examples from %d source(s)", len(examples), len(specs))
    return examples


def expand_glob(path: str | Path) -> list[Path]:
    """``path`` itself, or when it does not exist and holds a wildcard (``data/*.yml``, ``data/**/nlu*.yml``),
    the files it matches, sorted; a wildcard matching nothing is a DataError naming it."""
    path = Path(path)
    text = str(path)
    if path.exists() or not any(c in text for c in "*?["):
        return [path]
    import glob

    matches = sorted(Path(m) for m in glob.glob(text, recursive=True) if Path(m).is_file())
    if not matches:
        raise DataError("no file matches this pattern", path)
    return matches


def stratified_split(
    examples: Sequence[Example], fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Split into ``(train, held_out)`` with about ``fraction`` of each intent held out.

    Stratified by the whole ``intent`` string, deterministic for a seed, input order kept within each
    part; an intent with two or more examples keeps at least one in train, a single example stays in train.
    """
    valid = isinstance(fraction, numbers.Real) and not isinstance(fraction, bool)
    if not (valid and 0.0 < float(fraction) < 1.0):
        raise TrainingError(f"the held-out fraction must lie strictly between 0 and 1, got {fraction!r}")
    fraction = float(fraction)
    if not examples:
        raise TrainingError("no examples to split")
    rng = random.Random(seed)
    by_intent: dict[str, list[int]] = {}
    for index, example in enumerate(examples):
        by_intent.setdefault(example.intent, []).append(index)
    # how many of each intent to hold out: floor of the share, then the largest remainders up to the total
    target = round(len(examples) * fraction)
    quota = {intent: int(len(ids) * fraction) for intent, ids in by_intent.items()}
    cap = {intent: max(len(ids) - 1, 0) for intent, ids in by_intent.items()}
    quota = {intent: min(q, cap[intent]) for intent, q in quota.items()}
    order = sorted(by_intent)
    rng.shuffle(order)  # ties between equal remainders are broken by the seed, not by name
    order.sort(key=lambda i: len(by_intent[i]) * fraction - int(len(by_intent[i]) * fraction), reverse=True)
    for intent in order:
        if sum(quota.values()) >= target:
            break
        if quota[intent] < cap[intent]:
            quota[intent] += 1
    held: set[int] = set()
    for intent in sorted(by_intent):
        held.update(rng.sample(by_intent[intent], quota[intent]))
    train = [ex for i, ex in enumerate(examples) if i not in held]
    held_out = [ex for i, ex in enumerate(examples) if i in held]
    logger.info(
        "split %d examples into %d train and %d held out (seed %s)",
        len(examples),
        len(train),
        len(held_out),
        seed,
    )
    return train, held_out


def canonical_line(example: Example) -> str:
    """The canonical JSON of one example: sorted keys, compact separators, non-ASCII kept as is.

    An example without an intent (multi-label data such as NLU++) also carries ``"intents": []``, which marks
    the file as multi-label data for the JSONL importer: csbot reads back every file it writes.
    """
    data = example.to_dict()
    if not example.intents:
        data["intents"] = []
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def fingerprint(examples: Iterable[Example]) -> str:
    """sha256 hex of the examples' canonical JSON lines, in order; equals sha256 of ``write_jsonl``'s file."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(canonical_line(example).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def write_jsonl(examples: Iterable[Example], path: str | Path) -> int:
    """Write the examples as canonical JSONL, atomically: a temp file in the same folder, then ``os.replace``.

    Returns the number written; on any failure the previous file (if any) is left untouched and the temp
    file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    count = 0
    try:
        # os.open with 0o666 lets the umask decide the mode, as a plain open() would
        with os.fdopen(
            os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "w", encoding="utf-8"
        ) as out:
            for count, example in enumerate(examples, start=1):
                problem = example.span_problem()
                if problem is not None:
                    raise EntitySpanError(f"example {count - 1}: {problem}", path)
                out.write(canonical_line(example))
                out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    logger.info("wrote %d examples to %s", count, path)
    return count


__all__ = ["DataSpec", "canonical_line", "expand_glob", "fingerprint", "load_dataset", "stratified_split", "write_jsonl"]
