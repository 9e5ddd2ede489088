"""Retrain: train a candidate on the base data plus reviewed examples, compare it with the current model, decide.

:func:`retrain` merges the reviewed examples into the base data (:func:`merge_examples`: a reviewed example
whose text is already there replaces it, a correction), splits off dev when none is given (stratified, as
:mod:`training.prepare` does), trains the candidate (warm-started from the current model unless told to
train from scratch, :mod:`training.warm_start`), compares the two on dev and the regression set
(:mod:`training.compare`), decides the gate (:mod:`training.gate`) and writes the report
(:mod:`training.compare_report`). Registering the candidate is the caller's business.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from csbot.errors import TrainingError
from nlu.schema import Example
from training.compare import COMPARED, Comparison, compare_models
from training.compare_report import write_comparison_report
from training.config import TrainingConfig
from training.gate import GateDecision, decide, no_current_model

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class RetrainRequest:
    """What to retrain on, from what, and where the candidate and its report go."""

    config: TrainingConfig
    #: the base training data
    data: list[Example]
    #: reviewed examples to add; one whose text is already in ``data`` replaces that example (a correction)
    extra: list[Example] = field(default_factory=list)
    #: None: a stratified split of the merged data (``config.dev_split``)
    dev: list[Example] | None = None
    regression: list[Example] | None = None
    #: the current model's directory; None: there is none yet
    base_model: Path | None = None
    #: train from the base encoder even when there is a current model (still compared with it)
    from_scratch: bool = False
    out_dir: Path
    report_dir: Path
    tolerance: float = 0.01
    show_progress: bool = False


@dataclass
class RetrainResult:
    """The candidate, how it compares with the current model and the gate's decision."""

    candidate_dir: Path
    comparison: Comparison
    gate: GateDecision
    #: the candidate's metrics, flat: ``dev.<metric>``, ``regression.<metric>``
    metrics: dict[str, float]
    #: the current model's version (None: there was none)
    parent_version: str | None
    train_seconds: float
    #: how the reviewed examples changed the data
    corrected: int = 0
    added: int = 0


def text_key(text: str) -> str:
    """What makes two texts the same example: case and runs of whitespace do not count."""
    return " ".join(text.split()).casefold()


def merge_examples(data: Sequence[Example], extra: Sequence[Example]) -> tuple[list[Example], int, int]:
    """``data`` with ``extra`` merged in, and how many base examples were corrected and how many added.

    A reviewed example whose text (:func:`text_key`) is in ``data`` takes the place of the first such example,
    and any further duplicates of it in ``data`` are dropped; the others are appended in order. Among reviewed
    examples with the same text the last wins.
    """
    reviewed: dict[str, Example] = {}
    for ex in extra:
        reviewed[text_key(ex.text)] = ex
    merged: list[Example] = []
    used: set[str] = set()
    corrected = 0
    for ex in data:
        key = text_key(ex.text)
        if key not in reviewed:
            merged.append(ex)
        elif key not in used:
            used.add(key)
            merged.append(reviewed[key])
            corrected += 1
    added = [ex for key, ex in reviewed.items() if key not in used]
    return merged + added, corrected, len(added)


def _split(examples: list[Example], config: TrainingConfig) -> tuple[list[Example], list[Example]]:
    from training.data import stratified_split

    if config.dev_split <= 0:
        return examples, []
    return stratified_split(examples, config.dev_split, config.seed)


def flat_metrics(comparison: Comparison) -> dict[str, float]:
    """The candidate's numbers per set: ``<set>.<metric>`` for each compared metric it has."""
    out: dict[str, float] = {}
    for name, result in comparison.sets.items():
        for metric in COMPARED:
            value = result.value("new", metric)
            if value is not None:
                out[f"{name}.{metric}"] = value
    return out


def retrain(request: RetrainRequest) -> RetrainResult:
    """Train a candidate, compare it with the current model on dev (and regression), decide the gate, report.

    Raises :class:`TrainingError` when there is a current model but nothing to compare on (no dev examples
    and no regression set), before any training.
    """
    from nlu.artefact import read_info
    from nlu.inference import NLUModel
    from training.trainer import Trainer

    base = Path(request.base_model) if request.base_model is not None else None
    if base is not None and base.resolve() == Path(request.out_dir).resolve():
        raise TrainingError(f"the candidate cannot be written over the current model in {base}; give another out_dir")
    parent_version = read_info(base)[1].version if base is not None else None  # a broken model fails here, early
    data, corrected, added = merge_examples(request.data, request.extra)
    if request.dev is None:
        train, dev = _split(data, request.config)
    else:
        train, dev = data, list(request.dev)
    sets = {name: examples for name, examples in (("dev", dev), ("regression", request.regression or []))
            if examples}
    if base is not None and not sets:
        raise TrainingError("nothing to compare the candidate with the current model on: give a dev or a "
                            "regression set, or a dev_split above 0")
    warm = base is not None and not request.from_scratch
    log.info("retraining on %d examples (%d corrected, %d added), dev %d, %s", len(train), corrected, added,
             len(dev), f"warm-started from {base}" if warm else "from the base encoder")

    started = time.perf_counter()
    Trainer(request.config, train, dev, out_dir=request.out_dir, show_progress=request.show_progress,
            init_from=base if warm else None).run()
    train_seconds = time.perf_counter() - started

    new = NLUModel.load(request.out_dir, device="cpu")
    old = NLUModel.load(base, device="cpu") if base is not None else None
    if sets:
        comparison = compare_models(old, new, sets)
    else:  # the first model and no set to score it on
        comparison = Comparison(old_version=None, new_version=new.version, sets={})
    gate = decide(comparison, request.tolerance) if old is not None else no_current_model(request.tolerance)
    training = {
        "train_examples": len(train),
        "dev_examples": len(dev),
        "corrected_by_review": corrected,
        "added_by_review": added,
        "started_from": f"current model {parent_version}" if warm else "base encoder",
        "train_seconds": round(train_seconds, 1),
    }
    write_comparison_report(comparison, gate, request.report_dir, training=training)
    return RetrainResult(
        candidate_dir=Path(request.out_dir).resolve(),
        comparison=comparison,
        gate=gate,
        metrics=flat_metrics(comparison),
        parent_version=parent_version,
        train_seconds=train_seconds,
        corrected=corrected,
        added=added,
    )


__all__ = ["RetrainRequest", "RetrainResult", "flat_metrics", "merge_examples", "retrain", "text_key"]
