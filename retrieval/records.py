"""The Q&A record (DESIGN.md), its provenance after merging, and what a search returns."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any


def record_id(question: str, answer: str) -> str:
    """A stable id for a record that came without one: a digest of its question and answer."""
    digest = hashlib.sha1(f"{question}\x00{answer}".encode()).hexdigest()
    return f"qa-{digest[:12]}"


@dataclass
class Provenance:
    """Where one merged question came from: kept when near-identical questions share one index entry."""

    id: str
    question: str
    answer: str
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "question": self.question, "answer": self.answer}
        if self.source:
            out["source"] = self.source
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Provenance:
        return cls(str(data["id"]), str(data["question"]), str(data["answer"]), data.get("source"))


@dataclass
class QARecord:
    """One past question and the answer that resolved it; ``answer`` may be an intent name used as a key."""

    id: str
    question: str
    answer: str
    intent: str | None = None
    tags: list[str] = field(default_factory=list)
    source: str | None = None
    merged: list[Provenance] = field(default_factory=list)

    @classmethod
    def create(cls, question: str, answer: str, id: str | None = None, **extra: Any) -> QARecord:
        """A record with its id defaulted to a digest of question and answer."""
        return cls(id=id or record_id(question, answer), question=question, answer=answer, **extra)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "question": self.question, "answer": self.answer}
        if self.intent is not None:
            out["intent"] = self.intent
        if self.tags:
            out["tags"] = list(self.tags)
        if self.source:
            out["source"] = self.source
        if self.merged:
            out["merged"] = [p.to_dict() for p in self.merged]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QARecord:
        """Inverse of :meth:`to_dict`; raises ``KeyError``/``TypeError``/``ValueError`` on a malformed dict."""
        tags = data.get("tags") or []
        if isinstance(tags, str):
            tags = [t.strip() for t in tags.split(",") if t.strip()]
        if not isinstance(tags, list):
            raise TypeError("tags must be a list of strings or a comma-separated string")
        return cls(
            id=str(data["id"]),
            question=str(data["question"]),
            answer=str(data["answer"]),
            intent=None if data.get("intent") in (None, "") else str(data["intent"]),
            tags=[str(t) for t in tags],
            source=data.get("source") or None,
            merged=[Provenance.from_dict(p) for p in data.get("merged") or []],
        )

    def provenance(self) -> Provenance:
        """This record's own origin, as it is kept when another record absorbs it."""
        return Provenance(self.id, self.question, self.answer, self.source)

    def absorb(self, other: QARecord) -> None:
        """Merge a near-identical question into this one, keeping its answer and origin."""
        self.merged.append(other.provenance())
        self.merged.extend(other.merged)
        for tag in other.tags:
            if tag not in self.tags:
                self.tags.append(tag)


@dataclass
class Hit:
    """A record found by a search: ``score`` is the cosine similarity (higher is closer).

    With hybrid scoring, ``lexical`` is the share of the query's term weight the record matched and
    ``rank_score`` the fused value hits are ordered by; without it ``rank_score`` equals ``score``.
    """

    record: QARecord
    score: float
    rank_score: float
    lexical: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**self.record.to_dict(), "score": round(self.score, 6), "rank_score": round(self.rank_score, 6),
                "lexical": round(self.lexical, 6)}


@dataclass
class SearchResult:
    """The hits for one query and what the thresholds make of them.

    ``answered``: the top hit clears the threshold. ``ambiguous``: the first two hits (with different
    answers) are closer than the margin, or the top hit is within the margin of the threshold.
    """

    query: str
    hits: list[Hit]
    threshold: float
    margin: float

    @property
    def top(self) -> Hit | None:
        return self.hits[0] if self.hits else None

    @property
    def answered(self) -> bool:
        return bool(self.hits) and self.hits[0].rank_score >= self.threshold

    @property
    def ambiguous(self) -> bool:
        if not self.hits:
            return False
        top = self.hits[0]
        if abs(top.rank_score - self.threshold) < self.margin:
            return True
        rival = next((h for h in self.hits[1:] if h.record.answer != top.record.answer), None)
        return rival is not None and top.rank_score - rival.rank_score < self.margin

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "answered": self.answered, "ambiguous": self.ambiguous,
                "threshold": self.threshold, "hits": [h.to_dict() for h in self.hits]}
