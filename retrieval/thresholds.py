"""The Q&A index's own answer threshold, chosen at build time from its records alone.

No out-of-scope data is needed: every entry that has siblings (other entries with the same answer text) is
searched for as if it were a new question, with itself left out. Two rules (:mod:`csbot.thresholds`) then
apply, and the threshold is the higher of the two:

- *acceptance*: the best score among its siblings is what a right answer scores for it; the threshold is the
  score that ``accept_rate`` of these reach (97%: the lowest 3% would fall back);
- *precision*: the top hit is the answer the index would give; the threshold is the lowest score at which
  those answers are right ``answer_precision`` of the time (an index whose records blur into one another
  answers only where it is sure, or not at all).

With fewer than ``calibration_min_pairs`` such pairs the configured ``threshold`` is kept and the choice says so.
Big indexes are sampled (at most ``calibration_queries`` questions, seeded) and searched in batches.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from csbot.thresholds import acceptance_threshold, precision_threshold
from retrieval.records import QARecord

if TYPE_CHECKING:
    from retrieval.qa_index import QAIndex

Method = Literal["held_out", "config"]

#: Held-out questions searched per batch.
BATCH = 256
#: Hits looked through per held-out question before its siblings are scored one by one.
DEPTH = 20
#: Seed of the sample of held-out questions in a big index.
SEED = 0


@dataclass(frozen=True)
class ThresholdChoice:
    """The threshold an index answers with and how it was chosen (``held_out`` or ``config``)."""

    value: float
    method: Method
    pairs: int
    target: float
    #: the precision rule's target and the share of held-out top hits that were right (None: not applied)
    precision: float | None = None
    top_hit_accuracy: float | None = None

    def to_manifest(self) -> dict[str, Any]:
        """The manifest fields (:class:`~retrieval.persistence.IndexManifest`)."""
        return {"threshold": self.value, "threshold_method": self.method, "threshold_pairs": self.pairs,
                "threshold_target": self.target, "threshold_precision": self.precision,
                "threshold_top_hit_accuracy": self.top_hit_accuracy}

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> ThresholdChoice | None:
        """The choice saved in a manifest; None for an index saved before indexes chose their threshold."""
        if manifest.get("threshold_method") not in ("held_out", "config") or manifest.get("threshold") is None:
            return None
        precision, accuracy = manifest.get("threshold_precision"), manifest.get("threshold_top_hit_accuracy")
        return cls(float(manifest["threshold"]), manifest["threshold_method"], int(manifest.get("threshold_pairs") or 0),
                   float(manifest.get("threshold_target") or 0.0), None if precision is None else float(precision),
                   None if accuracy is None else float(accuracy))

    def describe(self) -> str:
        """One line for ``csbot index build`` and logs."""
        if self.method == "held_out":
            line = (f"answer threshold {self.value:.4f}, chosen on {self.pairs} held-out in-scope questions to accept "
                    f"{self.target:.0%} of them")
            if self.precision is not None and self.top_hit_accuracy is not None:
                line += (f" and answer right {self.precision:.0%} of the time (their top hits were right "
                         f"{self.top_hit_accuracy:.0%} of the time)")
            return line
        return (f"answer threshold {self.value:.4f} from the configuration (only {self.pairs} held-out "
                "in-scope questions, too few to choose one)")


def answer_key(record: QARecord) -> str:
    """What makes another record a right answer: the same answer text (spacing and case aside). Not the same
    intent: a catch-all intent (``shop_question``) holds records that answer unrelated questions, and
    counting those as right answers would pull the threshold down to where anything is answered."""
    return " ".join(record.answer.split()).casefold()


def held_out_labels(records: dict[int, QARecord], limit: int, seed: int = SEED) -> tuple[list[int], int]:
    """The entries that have siblings (a seeded sample of at most ``limit``), and how many have them in all."""
    by_key: dict[str, list[int]] = defaultdict(list)
    for label, record in records.items():
        by_key[answer_key(record)].append(label)
    eligible = sorted(label for labels in by_key.values() if len(labels) > 1 for label in labels)
    if len(eligible) > limit:
        picked = np.random.default_rng(seed).choice(len(eligible), limit, replace=False)
        return sorted(eligible[int(i)] for i in picked), len(eligible)
    return eligible, len(eligible)


@dataclass(frozen=True)
class HeldOut:
    """Per held-out entry: the best score among its siblings, the top hit's score, and whether the top hit is a
    sibling (the index would answer it right)."""

    sibling: np.ndarray
    top: np.ndarray
    top_right: np.ndarray


def held_out_scores(index: QAIndex, labels: list[int]) -> np.ndarray:
    """For each entry, the best score among its siblings when its question is searched with itself left out."""
    return held_out(index, labels).sibling


def held_out(index: QAIndex, labels: list[int]) -> HeldOut:
    """Each entry's question searched with itself left out: its siblings' best score and its top hit."""
    records = index.records
    assert index.vectors is not None
    siblings: dict[str, list[int]] = defaultdict(list)
    for label, record in records.items():
        siblings[answer_key(record)].append(label)
    out = np.full(len(labels), -np.inf, dtype=np.float64)
    top = np.full(len(labels), -np.inf, dtype=np.float64)
    top_right = np.zeros(len(labels), dtype=bool)
    missed: list[int] = []
    for start in range(0, len(labels), BATCH):
        batch = labels[start : start + BATCH]
        questions = [records[label].question for label in batch]
        results = index.search_vectors(questions, index.vectors.reconstruct(batch), DEPTH + 1)
        for offset, (label, result) in enumerate(zip(batch, results, strict=True)):
            own, key = records[label].id, answer_key(records[label])
            first = next((h for h in result.hits if h.record.id != own), None)
            if first is not None:
                top[start + offset], top_right[start + offset] = first.rank_score, answer_key(first.record) == key
            best = next((h.rank_score for h in result.hits if h.record.id != own and answer_key(h.record) == key), None)
            if best is None:
                missed.append(start + offset)
            else:
                out[start + offset] = best
    for row in missed:  # no sibling among the hits looked through: score them all
        out[row] = _best_sibling_score(index, labels[row], siblings[answer_key(records[labels[row]])])
    return HeldOut(out, top, top_right)


def _best_sibling_score(index: QAIndex, label: int, family: list[int]) -> float:
    """The search's rank score of each sibling of ``label`` for its question, computed directly; the best."""
    assert index.vectors is not None
    others = [x for x in family if x != label]
    query = index.vectors.reconstruct([label])[0]
    scores = index.vectors.reconstruct(others) @ query
    if index.config.hybrid.enabled:
        lexical = dict(index._lexical().scores(index.records[label].question, others))
        scores = scores + index.config.hybrid.weight * np.array([lexical.get(x, 0.0) for x in others])
    return float(np.max(scores))


def choose_threshold(index: QAIndex) -> ThresholdChoice:
    """The threshold ``index`` should answer with, from held-out in-scope scores or else the configuration."""
    cfg = index.config
    labels, _ = held_out_labels(index.records, cfg.calibration_queries)
    if len(labels) < cfg.calibration_min_pairs:
        return ThresholdChoice(cfg.threshold, "config", len(labels), cfg.accept_rate)
    scores = held_out(index, labels)
    value = acceptance_threshold(scores.sibling, cfg.accept_rate)
    if cfg.answer_precision <= 0:
        return ThresholdChoice(value, "held_out", len(labels), cfg.accept_rate)
    precise = precision_threshold(scores.top, scores.top_right, cfg.answer_precision, cfg.calibration_min_pairs)
    if precise is not None:
        value = max(value, precise)
    return ThresholdChoice(value, "held_out", len(labels), cfg.accept_rate, cfg.answer_precision,
                           round(float(scores.top_right.mean()), 4))


__all__ = ["HeldOut", "ThresholdChoice", "answer_key", "choose_threshold", "held_out", "held_out_labels",
           "held_out_scores"]
