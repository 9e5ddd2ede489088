"""One transcript record per turn (DESIGN.md, "Transcript turn") and its JSON form, one line per turn.

The bot writes these records and training reads them back to retrain, so they live here, below both.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class TranscriptTurn:
    """An append-only record of one turn; ``correction`` is filled in later by a reviewer.

    ``parse`` holds the intent, confidence, top of the ranking and entities; ``hits`` the retrieval hits
    with their scores; ``reply`` the reply as the bot's ``Reply.to_dict`` gives it; ``decision`` the
    decision in prose and ``code`` its reason code (``bot.turns.ReasonCode``); ``versions`` the NLU model's
    and the index's versions and creation times (``nlu``, ``nlu_created``, ``index``, ``index_created``).
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
    code: str = ""
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


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays as plain numbers and lists; anything else unknown as its ``str``."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def turn_to_json(turn: TranscriptTurn) -> str:
    """One turn as one line of compact JSON (no newline inside: JSON escapes them in strings)."""
    return json.dumps(turn.to_dict(copy=False), ensure_ascii=False, separators=(",", ":"), default=_json_default)


def turn_from_json(text: str | bytes) -> TranscriptTurn:
    """The inverse of :func:`turn_to_json`; raises ``ValueError`` with the reason when it is not a turn."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")  # noqa: TRY004 - bad data, one error type
    try:
        return TranscriptTurn.from_dict(data)
    except TypeError as exc:
        raise ValueError(f"not a transcript turn: {exc}") from exc


__all__ = ["TranscriptTurn", "turn_from_json", "turn_to_json"]
