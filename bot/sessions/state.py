"""The state of one conversation, stored as JSON under a namespaced key (DESIGN.md, "Session state").

The nested parts are dataclasses too: a :class:`PendingConfirmation` or :class:`PendingClarification`
(what the next yes/no or button click answers), :class:`PausedForm` (a form put aside by a topic switch)
and :class:`HistoryEntry` (one past turn). Their JSON is the plain dicts sessions were always stored as::

    pending:  {"kind": "confirm", "intent": ...} | {"kind": "clarify", "choices": [{"payload", "question",
               "answer", "id"}, ...]}
    paused:   [{"intent", "slots", "requested_slot"}, ...]
    history:  [{"user", "bot", "source", "intent"[, "completed", "slots"]}, ...]
"""

from __future__ import annotations

import copy as _copy
import logging
import time
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

log = logging.getLogger(__name__)

#: How many past turns a session keeps in ``history``.
HISTORY_LENGTH = 10


@dataclass
class PendingConfirmation:
    """A sensitive intent's form is complete; the next yes or no decides whether its action runs."""

    intent: str
    kind: ClassVar[str] = "confirm"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "intent": self.intent}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PendingConfirmation:
        return cls(intent=data["intent"])


@dataclass
class Choice:
    """One past answer a clarification offers: ``payload`` is what clicking its button sends."""

    payload: str
    question: str
    answer: str
    id: str

    def to_dict(self) -> dict[str, Any]:
        return {"payload": self.payload, "question": self.question, "answer": self.answer, "id": self.id}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Choice:
        return cls(payload=data["payload"], question=data["question"], answer=data["answer"], id=data["id"])


@dataclass
class PendingClarification:
    """Several past answers were about as close; the next message may pick one (its button or number)."""

    choices: list[Choice]
    kind: ClassVar[str] = "clarify"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "choices": [c.to_dict() for c in self.choices]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PendingClarification:
        return cls(choices=[Choice.from_dict(c) for c in data["choices"]])


Pending = PendingConfirmation | PendingClarification
_PENDING_KINDS: dict[str, type[PendingConfirmation] | type[PendingClarification]] = {
    PendingConfirmation.kind: PendingConfirmation,
    PendingClarification.kind: PendingClarification,
}


def pending_from_dict(data: dict[str, Any] | None) -> Pending | None:
    """The pending question stored as ``data``; one of a kind this version does not know is dropped."""
    if data is None:
        return None
    kind = _PENDING_KINDS.get(data.get("kind", ""))
    if kind is None:
        log.warning("dropping a stored pending question of unknown kind %r", data.get("kind"))
        return None
    return kind.from_dict(data)


@dataclass
class PausedForm:
    """A form put aside by a topic switch, resumed when the new request is done."""

    intent: str
    slots: dict[str, Any] = field(default_factory=dict)
    requested_slot: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"intent": self.intent, "slots": self.slots, "requested_slot": self.requested_slot}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PausedForm:
        return cls(intent=data["intent"], slots=dict(data.get("slots") or {}), requested_slot=data.get("requested_slot"))


@dataclass
class HistoryEntry:
    """One past turn: what was said, the reply's source and the parsed intent; for a turn that completed a
    request, the intent completed and its slots (what a later correction redoes)."""

    user: str
    bot: str
    source: str = ""
    intent: str | None = None
    completed: str | None = None
    slots: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"user": self.user, "bot": self.bot, "source": self.source, "intent": self.intent}
        if self.completed is not None:
            out["completed"] = self.completed
        if self.slots is not None:
            out["slots"] = self.slots
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HistoryEntry:
        return cls(user=data["user"], bot=data.get("bot", ""), source=data.get("source", ""),
                   intent=data.get("intent"), completed=data.get("completed"), slots=data.get("slots"))


@dataclass
class SessionState:
    """Everything the dialogue manager remembers between two messages of one conversation.

    ``slots`` holds filled slot values; ``requested_slot`` the slot the bot just asked for; ``paused`` the
    forms put aside by a topic switch (most recent last); ``pending`` what a yes/no or a button click
    answers; ``variants`` the last template variant used per template, so it is not repeated; ``history``
    the last few turns. ``channel`` and ``recipient_id`` say where the conversation's last message came
    from and where replies go, so a reply can be sent later (a hand-over, an agent's message).
    """

    session_id: str
    turn_count: int = 0
    active_intent: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    requested_slot: str | None = None
    consecutive_failures: int = 0
    handoff: bool = False
    paused: list[PausedForm] = field(default_factory=list)
    pending: Pending | None = None
    variants: dict[str, int] = field(default_factory=dict)
    history: list[HistoryEntry] = field(default_factory=list)
    channel: str | None = None
    recipient_id: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    def remember(self, turn: HistoryEntry) -> None:
        """Append a turn to ``history``, keeping the last :data:`HISTORY_LENGTH`."""
        self.history.append(turn)
        del self.history[:-HISTORY_LENGTH]

    def clear_form(self) -> None:
        """Drop the form in progress: its intent, slots, the slot asked and any pending question."""
        self.active_intent, self.slots, self.requested_slot, self.pending = None, {}, None, None

    def to_dict(self, copy: bool = True) -> dict[str, Any]:
        """The fields as JSON-ready values; ``copy=False`` shares the nested slots etc. instead of
        deep-copying them (what the stores use to serialise at once: the copy costs more than the JSON)."""
        data = {name: getattr(self, name) for name in _FIELD_NAMES}
        data["paused"] = [p.to_dict() for p in self.paused]
        data["pending"] = self.pending.to_dict() if self.pending is not None else None
        data["history"] = [h.to_dict() for h in self.history]
        return _copy.deepcopy(data) if copy else data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionState:
        """Inverse of :meth:`to_dict`; unknown keys (from a newer version) are ignored, a nested part that
        lacks a key it needs raises ``ValueError``."""
        values = {k: v for k, v in data.items() if k in _FIELD_NAMES}
        try:
            values["paused"] = [PausedForm.from_dict(p) for p in values.get("paused") or []]
            values["pending"] = pending_from_dict(values.get("pending"))
            values["history"] = [HistoryEntry.from_dict(h) for h in values.get("history") or []]
        except KeyError as exc:
            raise ValueError(f"a paused form, pending question or history entry lacks {exc}") from exc
        except AttributeError as exc:  # a list item or pending that is not a JSON object
            raise ValueError(f"a paused form, pending question or history entry is not an object ({exc})") from exc
        return cls(**values)


_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(SessionState))

__all__ = ["HISTORY_LENGTH", "Choice", "HistoryEntry", "PausedForm", "Pending", "PendingClarification",
           "PendingConfirmation", "SessionState", "pending_from_dict"]
