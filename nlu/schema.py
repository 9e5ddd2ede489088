"""The data contracts of the NLU layer: a training example in, a parse result out (see DESIGN.md).

Multi-label examples keep the canonical ``intent: str`` contract by joining labels with ``#`` (the
ATIS convention, e.g. ``atis_flight#atis_airfare``); an example that carries no intent at all (NLU++)
has ``intent == ""``. :attr:`Example.intents` gives the labels as a tuple either way.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

MULTI_LABEL_SEPARATOR = "#"


@dataclass(frozen=True)
class EntitySpan:
    """An entity in a training example: character offsets into the text and the text they select."""

    start: int
    end: int
    entity: str
    value: str

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "entity": self.entity, "value": self.value}


@dataclass
class Example:
    """A canonical training example, what every importer produces."""

    text: str
    intent: str
    entities: list[EntitySpan] = field(default_factory=list)

    @property
    def intents(self) -> tuple[str, ...]:
        """The example's intent labels: one for most data, several or none in multi-label data."""
        if not self.intent:
            return ()
        return tuple(part for part in self.intent.split(MULTI_LABEL_SEPARATOR) if part)

    def span_problem(self) -> str | None:
        """Why the entities do not fit the text, or None when every span selects its value."""
        for ent in self.entities:
            if not (0 <= ent.start < ent.end <= len(self.text)):
                return f"entity {ent.entity!r} span [{ent.start}, {ent.end}) lies outside the text (length {len(self.text)})"
            if self.text[ent.start : ent.end] != ent.value:
                return (
                    f"entity {ent.entity!r} span [{ent.start}, {ent.end}) selects "
                    f"{self.text[ent.start:ent.end]!r}, not its value {ent.value!r}"
                )
        spans = sorted(self.entities, key=lambda e: e.start)
        for left, right in itertools.pairwise(spans):
            if right.start < left.end:
                return f"entities {left.entity!r} and {right.entity!r} overlap at [{right.start}, {left.end})"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "intent": self.intent, "entities": [e.to_dict() for e in self.entities]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Example:
        """Build from the canonical dict; ``intents: [..]`` is accepted in place of ``intent``."""
        if "intent" in data:
            intent = data["intent"] or ""
        else:
            intent = MULTI_LABEL_SEPARATOR.join(data.get("intents") or [])
        entities = [
            EntitySpan(int(e["start"]), int(e["end"]), str(e["entity"]), str(e["value"]))
            for e in data.get("entities") or []
        ]
        return cls(text=str(data["text"]), intent=str(intent), entities=entities)


@dataclass
class IntentScore:
    """One intent and its calibrated confidence in [0, 1]."""

    name: str
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "confidence": round(float(self.confidence), 6)}


@dataclass
class ParsedEntity:
    """An entity found in a message: exact character span and value (the text it selects) of the original text.

    ``extractor`` names what found it: ``"model"`` (the tagger) or a built-in or pattern extractor
    (:mod:`nlu.extractors`: ``amount``, ``date``, ``pattern`` ...). ``normalized`` is its value in a canonical
    form, or None when it has none: an ISO date ``"2026-12-07"``, a time ``"14:30"``, an amount ``"50 USD"``, a
    number ``21``, a phone number in E.164 ``"+14155552671"``, or a synonym's canonical value (docs/entities.md).
    """

    entity: str
    value: str
    start: int
    end: int
    confidence: float
    normalized: Any = None
    extractor: str = "model"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["confidence"] = round(float(self.confidence), 6)
        if self.normalized is None:  # model entities keep the transcript's shape of before
            del out["normalized"]
        if self.extractor == "model":
            del out["extractor"]
        return out


@dataclass
class ParseResult:
    """What the NLU says about one message (DESIGN.md's parse result).

    ``intent`` is the best intent; in multi-label mode its name joins every predicted label with
    ``#`` and ``intents`` lists them one by one. ``out_of_scope`` is true when the model chose its
    out-of-scope label or its best in-scope confidence fell below the threshold; ``intent`` then still
    holds the model's best guess and ``intent_ranking`` the in-scope candidates.
    """

    text: str
    intent: IntentScore
    intent_ranking: list[IntentScore]
    entities: list[ParsedEntity]
    out_of_scope: bool
    intents: list[IntentScore] = field(default_factory=list)
    #: how close the message is to the training examples (cosine similarity, nlu/neighbours.py); None when the
    #: model has no out-of-scope detector of that kind
    oos_score: float | None = None
    #: the confidence this model's answers need, chosen on dev when it was trained (``Calibration.intent_threshold``);
    #: the policy's default when the domain sets none. None: the model chose none
    threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "intent": self.intent.to_dict(),
            "intent_ranking": [s.to_dict() for s in self.intent_ranking],
            "intents": [s.to_dict() for s in self.intents],
            "entities": [e.to_dict() for e in self.entities],
            "out_of_scope": self.out_of_scope,
            "oos_score": self.oos_score,
            "threshold": self.threshold,
        }


__all__ = ["EntitySpan", "Example", "IntentScore", "MULTI_LABEL_SEPARATOR", "ParseResult", "ParsedEntity"]
