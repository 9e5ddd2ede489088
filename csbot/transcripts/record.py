"""One transcript record per turn (DESIGN.md, "Transcript turn") and its JSON form, one line per turn.

The bot writes these records and training reads them back to retrain, so they live here, below both.
A line is UTF-8 JSON with no line break of any kind inside: JSON escapes ``\n`` and the other control
characters, and :func:`turn_to_json` escapes U+0085, U+2028 and U+2029 too, which ``str.splitlines`` (and
some editors and JavaScript) take for line ends. Readers still split on ``\n`` only.
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
    and the index's versions and creation times (``nlu``, ``nlu_created``, ``index``, ``index_created``);
    ``author`` who wrote the reply ("" for the bot, an agent's name for a person's message, source ``agent``).
    A reply that could not be delivered is a turn of source ``undelivered`` whose ``decision`` gives the reason.
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
    #: Who wrote the reply: "" for the bot, else the person (an agent) who took the conversation over.
    author: str = ""

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


#: Characters that are line ends to ``str.splitlines`` but not to JSON; escaped in every line written.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})

#: What each field of a turn may hold in JSON (bool is not a number here).
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "session_id": (str,), "channel": (str,), "user_text": (str,), "decision": (str,), "source": (str,),
    "reply": (dict,), "parse": (dict, type(None)), "hits": (list,), "latency_ms": (int, float),
    "versions": (dict,), "turn": (int,), "code": (str,), "timestamp": (int, float),
    "correction": (dict, type(None)), "author": (str,),
}


def turn_to_json(turn: TranscriptTurn) -> str:
    """One turn as one line of compact JSON, with no line break of any kind inside (see the module docstring)."""
    text = json.dumps(turn.to_dict(copy=False), ensure_ascii=False, separators=(",", ":"), default=_json_default)
    return text.translate(_LINE_BREAKS)  # these occur only inside strings, where the escape means the same


def turn_from_json(text: str | bytes) -> TranscriptTurn:
    """The inverse of :func:`turn_to_json`; raises ``ValueError`` with the reason when it is not a turn.

    Bytes must be UTF-8 (strictly: no other encoding is guessed); each field must have its JSON type.
    """
    try:
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8")
        data = json.loads(text)
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} at column {exc.colno}") from exc
    except RecursionError as exc:  # "[[[[..." nested deeper than the parser goes
        raise ValueError("not JSON: nested too deeply") from exc
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")  # noqa: TRY004 - bad data, one error type
    for name, types in _FIELD_TYPES.items():
        if name in data and (not isinstance(data[name], types) or isinstance(data[name], bool)):
            raise ValueError(f"not a transcript turn: {name} is {type(data[name]).__name__}")
    try:
        return TranscriptTurn.from_dict(data)
    except TypeError as exc:
        raise ValueError(f"not a transcript turn: {exc}") from exc


__all__ = ["TranscriptTurn", "turn_from_json", "turn_to_json"]
