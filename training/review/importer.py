"""Importing reviewed files: every line checked first, then examples, out-of-scope examples and Q&A records.

:func:`import_reviewed` reads every line of every file before it returns anything: the first bad line raises
:class:`~csbot.errors.DataError` naming its file and line, and nothing is returned (so nothing is merged
anywhere). The rules, per decision:

* ``accept``: the item's ``intent`` is the model's (``predicted_intent``; anything when there was no guess);
  ``relabel``: an ``intent`` other than the predicted one. Either needs a non-empty intent for an example.
  Every intent (each part of ``a#b``) and entity type must be known, unless new labels are allowed (they are
  then listed in :attr:`ReviewedData.new_labels`). Entity spans must lie inside the text, select their
  value exactly (``text[start:end] == value``) and not overlap.
* ``out_of_scope``: the text becomes an example of the out-of-scope label (``oos`` unless the model names
  another), without entities.
* ``skip``: dropped (counted in :attr:`ReviewedData.skipped`).
* A Q&A candidate (``kind: qa``) accepted or relabelled needs a non-empty ``answer`` and becomes a
  :class:`~retrieval.records.QARecord` (its intent, when given, checked as above).
* No decision yet (``null``) is an error, unless ``allow_unreviewed`` (then it counts as skipped).
* An item id met twice (the same text in two files) is read once when both lines say the same, and is an
  error naming both places when they differ.

:func:`write_reviewed` writes the result to a folder atomically.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csbot.atomic_files import temp_beside
from csbot.errors import DataError, EntitySpanError
from nlu.schema import MULTI_LABEL_SEPARATOR, Example
from retrieval.records import QARecord
from training.data import canonical_line
from training.review.items import ReviewItem, iter_review_file

#: The label out-of-scope items get when the model names none.
OOS_LABEL = "oos"
#: The files :func:`write_reviewed` writes.
EXAMPLES_FILE, OOS_FILE, QA_FILE, DECISIONS_FILE = "examples.jsonl", "out_of_scope.jsonl", "qa.jsonl", "decisions.json"


@dataclass
class ReviewedData:
    """What reviewed files hold once checked: training examples, out-of-scope examples and Q&A records."""

    examples: list[Example] = field(default_factory=list)
    out_of_scope: list[Example] = field(default_factory=list)
    qa: list[QARecord] = field(default_factory=list)
    #: decision -> how many lines had it (``unreviewed`` for null decisions let through)
    decisions: Counter[str] = field(default_factory=Counter)
    #: ``intents`` / ``entity_types`` -> labels the model does not know (only with ``allow_new_labels``)
    new_labels: dict[str, list[str]] = field(default_factory=dict)
    #: lines dropped: decision ``skip`` (and null, with ``allow_unreviewed``)
    skipped: int = 0
    #: who reviewed (the non-empty ``review.reviewer`` values, sorted)
    reviewers: list[str] = field(default_factory=list)
    #: the files read, in order
    files: list[str] = field(default_factory=list)


class _Checker:
    """The rules of the module docstring, applied one item at a time."""

    def __init__(self, labels: set[str], entity_types: set[str], allow_new_labels: bool, oos_label: str,
                 allow_unreviewed: bool) -> None:
        self.labels, self.entity_types = set(labels), set(entity_types)
        self.allow_new, self.oos_label, self.allow_unreviewed = allow_new_labels, oos_label, allow_unreviewed
        self.data = ReviewedData()
        self.new_intents: list[str] = []
        self.new_types: list[str] = []
        self.seen: dict[str, tuple[str, tuple[Any, ...]]] = {}
        self.reviewers: set[str] = set()

    def _intent(self, intent: str, path: Path, line: int) -> None:
        parts = [p for p in intent.split(MULTI_LABEL_SEPARATOR) if p]
        if not parts:
            raise DataError(f"empty intent {intent!r}", path, line)
        for part in parts:
            if part in self.labels or part == self.oos_label:
                continue
            if not self.allow_new:
                raise DataError(f"unknown intent {part!r}: the model does not know it "
                                f"(fix the label, or import with --allow-new-labels)", path, line)
            if part not in self.new_intents:
                self.new_intents.append(part)

    def _entities(self, example: Example, path: Path, line: int) -> None:
        problem = example.span_problem()
        if problem is not None:
            raise EntitySpanError(problem, path, line)
        for span in example.entities:
            if span.entity in self.entity_types:
                continue
            if not self.allow_new:
                raise DataError(f"unknown entity type {span.entity!r}: the model does not know it "
                                f"(fix it, or import with --allow-new-labels)", path, line)
            if span.entity not in self.new_types:
                self.new_types.append(span.entity)

    def _check(self, item: ReviewItem, path: Path, line: int) -> Example | QARecord | None:
        """The item's rules; what it becomes (an example, an out-of-scope example, a record) or None."""
        review = item.review
        decision = review.decision
        if decision is None:
            if not self.allow_unreviewed:
                raise DataError("no decision yet (set review.decision to accept, relabel, skip or out_of_scope)",
                                path, line)
            return None
        if decision == "skip":
            return None
        if decision == "out_of_scope":
            return Example(item.text, self.oos_label)
        predicted, intent = review.predicted_intent, item.intent
        if decision == "accept" and predicted and intent != predicted:
            raise DataError(f"accept keeps the predicted intent {predicted!r}, but the intent is {intent!r} "
                            f"(use relabel when you change it)", path, line)
        if decision == "relabel" and intent == predicted:
            raise DataError(f"relabel needs an intent other than the predicted {predicted!r}", path, line)
        if item.kind == "qa":
            if intent:
                self._intent(intent, path, line)
            answer = (item.answer or "").strip()
            if not answer:
                raise DataError(f"a Q&A candidate marked {decision} needs a non-empty 'answer'", path, line)
            return QARecord(id=review.id, question=item.text.strip(), answer=answer, intent=intent or None,
                            source=f"review:{review.source}")
        if not intent:
            raise DataError(f"an example marked {decision} needs an intent", path, line)
        self._intent(intent, path, line)
        example = Example(item.text, intent, list(item.entities))
        self._entities(example, path, line)
        return example

    def add(self, item: ReviewItem, path: Path, line: int) -> None:
        """Check one item, then keep what it becomes (once, when the same item comes again alike)."""
        review = item.review
        result = self._check(item, path, line)
        signature = (review.decision, item.intent, tuple(item.entities), (item.answer or "").strip())
        if review.id in self.seen:
            where, earlier = self.seen[review.id]
            if earlier == signature:  # the same text reviewed the same way in two files: once is enough
                return
            raise DataError(f"item {review.id} ({item.text!r}) was reviewed differently at {where}", path, line)
        self.seen[review.id] = (f"{path}:{line}", signature)
        data = self.data
        if review.decision is None:
            data.decisions["unreviewed"] += 1
            data.skipped += 1
            return
        data.decisions[review.decision] += 1
        if review.reviewer:
            self.reviewers.add(review.reviewer)
        if review.decision == "skip":
            data.skipped += 1
        elif isinstance(result, QARecord):
            data.qa.append(result)
        elif review.decision == "out_of_scope" and result is not None:
            data.out_of_scope.append(result)
        elif result is not None:
            data.examples.append(result)

    def result(self, files: list[str]) -> ReviewedData:
        data = self.data
        if self.new_intents:
            data.new_labels["intents"] = sorted(self.new_intents)
        if self.new_types:
            data.new_labels["entity_types"] = sorted(self.new_types)
        data.reviewers = sorted(self.reviewers)
        data.files = files
        return data


def import_reviewed(paths: Sequence[str | Path] | str | Path, labels: set[str], entity_types: set[str],
                    allow_new_labels: bool = False, *, oos_label: str | None = None,
                    allow_unreviewed: bool = False) -> ReviewedData:
    """Every reviewed line of ``paths`` checked (module docstring) and gathered; the first bad line of any file
    raises DataError naming its file and line, and nothing is returned.

    ``labels`` and ``entity_types`` are what the model knows (its label maps); ``oos_label`` the label
    out-of-scope items get (default :data:`OOS_LABEL`).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        raise DataError("no reviewed files given")
    checker = _Checker(labels, entity_types, allow_new_labels, oos_label or OOS_LABEL, allow_unreviewed)
    for raw in paths:
        path = Path(raw)
        for line, item in iter_review_file(path):
            checker.add(item, path, line)
    return checker.result([str(p) for p in paths])


def _json_lines(lines: Iterable[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


def write_reviewed(data: ReviewedData, out_dir: str | Path) -> dict[str, int]:
    """Write ``data`` into ``out_dir``: ``examples.jsonl`` and ``out_of_scope.jsonl`` (canonical JSONL, as
    :func:`training.data.write_jsonl` writes), ``qa.jsonl`` (Q&A JSONL) and ``decisions.json`` (the counts,
    reviewers, files and time). A JSONL file with nothing to hold is not written (an old one of that name is
    removed), since the loaders refuse empty files. Every file goes to a temp name first and all are renamed
    only once all are written. Returns file name -> lines written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for example in [*data.examples, *data.out_of_scope]:
        problem = example.span_problem()
        if problem is not None:
            raise EntitySpanError(f"{example.text!r}: {problem}", out)
    contents: dict[str, tuple[str, int]] = {}
    if data.examples:
        contents[EXAMPLES_FILE] = (_json_lines(canonical_line(e) for e in data.examples), len(data.examples))
    if data.out_of_scope:
        contents[OOS_FILE] = (_json_lines(canonical_line(e) for e in data.out_of_scope), len(data.out_of_scope))
    if data.qa:
        qa_lines = (json.dumps(r.to_dict(), ensure_ascii=False, sort_keys=True, separators=(",", ":")) for r in data.qa)
        contents[QA_FILE] = (_json_lines(qa_lines), len(data.qa))
    written = {name: count for name, (_, count) in contents.items()}
    summary: dict[str, Any] = {
        "decisions": dict(sorted(data.decisions.items())),
        "skipped": data.skipped,
        "new_labels": data.new_labels,
        "reviewers": data.reviewers,
        "files": data.files,
        "written": written,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    contents[DECISIONS_FILE] = (json.dumps(summary, ensure_ascii=False, indent=2) + "\n", 1)
    temps: dict[str, Path] = {}
    try:
        for name, (text, _) in contents.items():
            temp = temps[name] = temp_beside(out / name)
            with open(temp, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        for name in (EXAMPLES_FILE, OOS_FILE, QA_FILE):
            if name not in contents:
                (out / name).unlink(missing_ok=True)
        for name, temp in temps.items():
            os.replace(temp, out / name)
    except BaseException:
        for temp in temps.values():
            with contextlib.suppress(OSError):
                temp.unlink()
        raise
    return written


__all__ = ["OOS_LABEL", "ReviewedData", "import_reviewed", "write_reviewed"]
