"""One transcript record per turn (DESIGN.md, "Transcript turn"): what was said, understood, decided and answered."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class TranscriptTurn:
    """An append-only record of one turn; ``correction`` is filled in later by a reviewer.

    ``parse`` holds the intent, confidence, top of the ranking and entities; ``hits`` the retrieval hits
    with their scores; ``reply`` the reply as :meth:`bot.messages.Reply.to_dict` gives it; ``versions``
    the NLU model's and the index's fingerprints.
    """

    session_id: str
    channel: str
    user_text: str
    decision: str
    source: str
    reply: dict[str, Any]
    parse: dict[str, Any] | None = None
    hits: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)
    turn: int = 0
    timestamp: float = field(default_factory=time.time)
    correction: dict[str, Any] | None = None

    def to_dict(self, copy: bool = True) -> dict[str, Any]:
        """The fields as a dict; ``copy=False`` shares the nested values (for serialising at once, where
        the deep copy would cost more than the JSON encoding)."""
        if copy:
            return asdict(self)
        return {name: getattr(self, name) for name in _FIELD_NAMES}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TranscriptTurn:
        """Inverse of :meth:`to_dict`; raises ``TypeError`` when a required field is missing."""
        return cls(**{k: v for k, v in data.items() if k in _FIELD_NAMES})


_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(TranscriptTurn))
