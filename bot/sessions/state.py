"""The state of one conversation, stored as JSON under a namespaced key (DESIGN.md, "Session state")."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

#: How many past turns a session keeps in ``history``.
HISTORY_LENGTH = 10


@dataclass
class SessionState:
    """Everything the dialogue manager remembers between two messages of one conversation.

    ``slots`` holds filled slot values; ``requested_slot`` the slot the bot just asked for; ``paused`` the
    forms put aside by a topic switch (most recent last), each ``{"intent", "slots", "requested_slot"}``;
    ``pending`` what a yes/no or a button click answers (a confirmation, a clarification's choices);
    ``variants`` the last template variant used per template, so it is not repeated; ``history`` the last
    few turns as ``{"user", "bot", "source", "intent"}``.
    """

    session_id: str
    turn_count: int = 0
    active_intent: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    requested_slot: str | None = None
    consecutive_failures: int = 0
    handoff: bool = False
    paused: list[dict[str, Any]] = field(default_factory=list)
    pending: dict[str, Any] | None = None
    variants: dict[str, int] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    def remember(self, turn: dict[str, Any]) -> None:
        """Append a turn to ``history``, keeping the last :data:`HISTORY_LENGTH`."""
        self.history.append(turn)
        del self.history[:-HISTORY_LENGTH]

    def to_dict(self, copy: bool = True) -> dict[str, Any]:
        """The fields as a dict; ``copy=False`` shares the nested slots, history etc. instead of deep-copying
        them (what the stores use to serialise at once: the copy costs more than the JSON encoding)."""
        if copy:
            return asdict(self)
        return {name: getattr(self, name) for name in _FIELD_NAMES}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionState:
        """Inverse of :meth:`to_dict`; unknown keys (from a newer version) are ignored."""
        return cls(**{k: v for k, v in data.items() if k in _FIELD_NAMES})


_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(SessionState))
