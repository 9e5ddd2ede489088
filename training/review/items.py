"""One thing for a person to review, and the review file: JSON Lines, one :class:`ReviewItem` a line.

A line is the canonical training example (``text``, ``intent``, ``entities``) pre-filled with the model's
guess, so that an accepted line is already a training example, plus ``review`` (where it came from, how
unsure the model was, and the reviewer's decision), ``kind`` (``example`` or ``qa``) and, for a Q&A
candidate, ``answer`` (the agent's reply)::

    {"text": "wheres my parcel", "intent": "track_order", "entities": [], "kind": "example",
     "review": {"id": "rv-3f0c...", "session_id": "s1", "turn": 3, "timestamp": 1714557600.0,
                "source": "transcript", "confidence": 0.41, "margin": 0.05, "entropy": 0.93,
                "predicted_intent": "track_order", "count": 4, "sessions": ["s1", "s7"],
                "model_version": "v3", "decision": null, "reviewer": "", "note": ""}}

Reading is strict: a line that is not such an object raises :class:`~csbot.errors.DataError` naming the file
and line (``file:line: reason``); nothing of a file is returned when one line is bad.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csbot.atomic_files import write_lines_atomically
from csbot.datafiles import jsonl_lines
from csbot.errors import DataError
from csbot.strict_json import loads_json
from nlu.schema import EntitySpan

#: What a reviewer may decide: keep the model's guess, change it, leave the line out, or call it out of scope.
DECISIONS = ("accept", "relabel", "skip", "out_of_scope")
#: Where an item came from: the bot's transcript log, raw helpdesk history, a conversation handed to a person.
SOURCES = ("transcript", "helpdesk", "handoff")
#: A training example to label, or a question with the agent's answer (a Q&A record candidate).
KINDS = ("example", "qa")
#: How many session ids an item keeps as examples of where its merged duplicates came from.
MAX_SESSIONS = 5

_NOT_WORD = re.compile(r"[^\w]+", re.UNICODE)


def normalise_text(text: str) -> str:
    """The form under which two texts count as the same: case folded, punctuation gone, spaces collapsed."""
    return " ".join(_NOT_WORD.sub(" ", text.casefold()).replace("_", " ").split())


def item_id(text: str, kind: str = "example") -> str:
    """A stable id from the normalised text (a Q&A candidate's id differs from an example's of the same text)."""
    key = normalise_text(text) if kind == "example" else f"{kind}\x00{normalise_text(text)}"
    return "rv-" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


@dataclass
class ReviewInfo:
    """The ``review`` part of a line: provenance, the model's uncertainty, and the reviewer's decision.

    ``confidence``, ``margin`` and ``entropy`` are None when no model looked at the text (raw helpdesk
    history without a parser); ``decision`` is None until a person reviews the line.
    """

    id: str
    source: str = "transcript"
    session_id: str = ""
    turn: int | None = None
    timestamp: float | None = None
    confidence: float | None = None
    margin: float | None = None
    entropy: float | None = None
    predicted_intent: str = ""
    count: int = 1
    sessions: list[str] = field(default_factory=list)
    model_version: str = ""
    decision: str | None = None
    reviewer: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "session_id": self.session_id, "turn": self.turn, "timestamp": self.timestamp,
            "source": self.source, "confidence": _rounded(self.confidence), "margin": _rounded(self.margin),
            "entropy": _rounded(self.entropy), "predicted_intent": self.predicted_intent, "count": self.count,
            "sessions": list(self.sessions), "model_version": self.model_version, "decision": self.decision,
            "reviewer": self.reviewer, "note": self.note,
        }


@dataclass
class ReviewItem:
    """One line of a review file: the example (pre-filled with the model's guess) and its review."""

    text: str
    intent: str
    entities: list[EntitySpan]
    review: ReviewInfo
    kind: str = "example"
    #: a Q&A candidate's answer (the agent's reply that followed the question); None for an example
    answer: str | None = None

    @property
    def key(self) -> str:
        """The normalised text (what exact-duplicate merging compares)."""
        return normalise_text(self.text)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text, "intent": self.intent,
                               "entities": [e.to_dict() for e in self.entities], "kind": self.kind}
        if self.answer is not None or self.kind == "qa":
            out["answer"] = self.answer or ""
        out["review"] = self.review.to_dict()
        return out

    def to_json(self) -> str:
        """One line of JSON (no line break inside: ``json`` escapes them, U+2028/U+2029 included)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(", ", ": ")).translate(_LINE_BREAKS)

    @classmethod
    def from_parse(cls, text: str, parse: Mapping[str, Any] | None, *, source: str, session_id: str = "",
                   turn: int | None = None, timestamp: float | None = None, model_version: str = "",
                   kind: str = "example", answer: str | None = None) -> ReviewItem:
        """An item for ``text`` pre-filled from a parse result dict (``None``: no guess, intent left empty).

        Only the parse's entities whose offsets select their value in ``text`` are kept as the guess.
        """
        from training.review.uncertainty import entropy, margin, ranking_confidences

        intent, confidence, spans = "", None, []
        scores: list[float] = []
        if parse:
            name = parse.get("intent")
            if isinstance(name, Mapping):
                intent = str(name.get("name") or "")
                confidence = _number(name.get("confidence"))
            elif isinstance(name, str):
                intent, confidence = name, _number(parse.get("confidence"))
            scores = ranking_confidences(parse)
            spans = _guessed_spans(text, parse.get("entities"))
        info = ReviewInfo(
            id=item_id(text, kind), source=source, session_id=session_id, turn=turn, timestamp=timestamp,
            confidence=confidence, margin=margin(scores) if scores else None,
            entropy=entropy(scores) if scores else None, predicted_intent=intent,
            sessions=[session_id] if session_id else [], model_version=model_version,
        )
        return cls(text=text, intent=intent, entities=spans, review=info, kind=kind, answer=answer)


_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _guessed_spans(text: str, entities: Any) -> list[EntitySpan]:
    """The parse's entities that fit ``text`` exactly and do not overlap an earlier one."""
    spans: list[EntitySpan] = []
    for entity in entities if isinstance(entities, list) else []:
        if not isinstance(entity, Mapping):
            continue
        start, end, name, value = (entity.get(k) for k in ("start", "end", "entity", "value"))
        if not (isinstance(start, int) and isinstance(end, int) and isinstance(name, str) and isinstance(value, str)):
            continue
        if 0 <= start < end <= len(text) and text[start:end] == value:
            if any(start < s.end and s.start < end for s in spans):
                continue
            spans.append(EntitySpan(start, end, name, value))
    return sorted(spans, key=lambda s: s.start)


# -- reading ----------------------------------------------------------------------------------------


def _field(data: Mapping[str, Any], name: str, types: tuple[type, ...], path: Path, line: int,
           *, default: Any = None, required: bool = False, where: str = "") -> Any:
    """``data[name]`` checked against ``types`` (bool is not a number); missing: ``default`` or an error."""
    if name not in data:
        if required:
            raise DataError(f"missing {where}{name!r}", path, line)
        return default
    value = data[name]
    if isinstance(value, bool) and bool not in types:
        value_ok = False
    else:
        value_ok = isinstance(value, types)
    if not value_ok:
        expected = " or ".join("null" if t is type(None) else t.__name__ for t in types)
        raise DataError(f"{where}{name!r} must be {expected}, not {type(value).__name__}", path, line)
    return value


def _entities(raw: Any, path: Path, line: int) -> list[EntitySpan]:
    if not isinstance(raw, list):
        raise DataError(f"'entities' must be a list, not {type(raw).__name__}", path, line)
    spans = []
    for position, entity in enumerate(raw, start=1):
        if not isinstance(entity, dict):
            raise DataError(f"entity {position} is not an object with start, end, entity and value", path, line)
        where = f"entity {position}: "
        start = _field(entity, "start", (int,), path, line, required=True, where=where)
        end = _field(entity, "end", (int,), path, line, required=True, where=where)
        name = _field(entity, "entity", (str,), path, line, required=True, where=where)
        value = _field(entity, "value", (str,), path, line, required=True, where=where)
        if not name.strip():
            raise DataError(f"{where}empty entity type", path, line)
        spans.append(EntitySpan(start, end, name, value))
    return spans


def item_from_dict(data: Any, path: str | Path, line: int) -> ReviewItem:
    """One decoded line as an item; a line of the wrong shape raises DataError naming ``path:line``."""
    path = Path(path)
    if not isinstance(data, dict):
        raise DataError(f"expected a JSON object, got {type(data).__name__}", path, line)
    text = _field(data, "text", (str,), path, line, required=True)
    if not text.strip():
        raise DataError("empty 'text'", path, line)
    intent = _field(data, "intent", (str, type(None)), path, line, default="") or ""
    entities = _entities(data.get("entities", []), path, line)
    kind = _field(data, "kind", (str,), path, line, default="example")
    if kind not in KINDS:
        raise DataError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})", path, line)
    answer = _field(data, "answer", (str, type(None)), path, line)
    review = _field(data, "review", (dict,), path, line, required=True)
    w = "review "
    decision = _field(review, "decision", (str, type(None)), path, line, where=w)
    if decision is not None and decision not in DECISIONS:
        raise DataError(f"unknown decision {decision!r} (one of {', '.join(DECISIONS)}, or null before review)",
                        path, line)
    source = _field(review, "source", (str,), path, line, default="transcript", where=w)
    if source not in SOURCES:
        raise DataError(f"unknown review source {source!r} (one of {', '.join(SOURCES)})", path, line)
    sessions = _field(review, "sessions", (list,), path, line, default=[], where=w)
    if not all(isinstance(s, str) for s in sessions):
        raise DataError("'sessions' must be a list of strings", path, line)
    count = _field(review, "count", (int,), path, line, default=1, where=w)
    if count < 1:
        raise DataError(f"'count' must be at least 1, not {count}", path, line)
    number = (int, float, type(None))
    info = ReviewInfo(
        id=_field(review, "id", (str,), path, line, default="", where=w) or item_id(text, kind),
        source=source,
        session_id=_field(review, "session_id", (str, type(None)), path, line, default="", where=w) or "",
        turn=_field(review, "turn", (int, type(None)), path, line, where=w),
        timestamp=_field(review, "timestamp", number, path, line, where=w),
        confidence=_field(review, "confidence", number, path, line, where=w),
        margin=_field(review, "margin", number, path, line, where=w),
        entropy=_field(review, "entropy", number, path, line, where=w),
        predicted_intent=_field(review, "predicted_intent", (str, type(None)), path, line, default="", where=w) or "",
        count=count,
        sessions=list(sessions),
        model_version=_field(review, "model_version", (str, type(None)), path, line, default="", where=w) or "",
        decision=decision,
        reviewer=_field(review, "reviewer", (str, type(None)), path, line, default="", where=w) or "",
        note=_field(review, "note", (str, type(None)), path, line, default="", where=w) or "",
    )
    return ReviewItem(text=text, intent=intent.strip(), entities=entities, review=info, kind=kind, answer=answer)


def iter_review_file(path: str | Path) -> Iterator[tuple[int, ReviewItem]]:
    """``(line number, item)`` for every non-blank line; the first bad line raises DataError (``file:line``).

    Lines end at ``\\n`` only and are decoded as strict UTF-8 and strict JSON (no duplicate keys, no NaN).
    """
    path = Path(path)
    for number, text in jsonl_lines(path):
        yield number, item_from_dict(loads_json(text, path, number), path, number)


def read_review_file(path: str | Path) -> list[ReviewItem]:
    """Every item of a review file, all lines checked first (see :func:`iter_review_file`)."""
    return [item for _, item in iter_review_file(path)]


# -- writing ----------------------------------------------------------------------------------------


def write_review_file(items: Iterable[ReviewItem], path: str | Path) -> int:
    """Write the items, one line each, atomically (a temp file beside it, then ``os.replace``); the count."""
    path = Path(path)
    return write_lines_atomically(path, (item.to_json() for item in items))


__all__ = [
    "DECISIONS", "KINDS", "SOURCES", "ReviewInfo", "ReviewItem", "item_from_dict", "item_id", "iter_review_file",
    "normalise_text", "read_review_file", "write_review_file",
]
