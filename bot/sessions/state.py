"""The state of one conversation, stored as JSON under a namespaced key (DESIGN.md, "Session state").

The nested parts are dataclasses too: a :class:`PendingConfirmation` or :class:`PendingClarification`
(what the next yes/no or button click answers), :class:`PausedForm` (a form put aside by a topic switch)
and :class:`HistoryEntry` (one past turn). Their JSON is the plain dicts sessions were always stored as::

    pending:  {"kind": "confirm", "intent": ...} | {"kind": "clarify", "choices": [{"payload", "question",
               "answer", "id"}, ...]}
    paused:   [{"intent", "slots", "requested_slot"}, ...]
    history:  [{"user", "bot", "source", "intent"[, "completed", "slots"]}, ...]

``from_dict`` checks the type of every field it reads (a stored state may have been written by another
version, or by hand): a field of the wrong type raises ``ValueError``, which the stores report as a corrupt
state; a turn then starts the conversation over instead of failing on it (see :mod:`bot.sessions.base`).
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


_TEXT: tuple[type, ...] = (str,)
_OPTIONAL_TEXT: tuple[type, ...] = (str, type(None))


def _check(value: Any, kinds: tuple[type, ...], what: str, key: str = "") -> Any:
    """``value`` if it is one of ``kinds`` (a bool is not an int here), else ``ValueError`` naming ``what``
    (and its ``key``). The message is only built for a value that does not fit: loading stays cheap."""
    if type(value) in kinds:
        return value
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        raise ValueError(f"{what}'s {key} must be {names}, not {type(value).__name__}" if key else
                         f"{what} must be {names}, not {type(value).__name__}")
    return value


def _text(data: dict[str, Any], key: str, what: str, default: Any = ...) -> Any:
    """``data[key]`` as a string (``None`` allowed when ``default`` is None); a missing key raises
    ``KeyError`` unless a default is given."""
    if key in data:
        return _check(data[key], _TEXT if default is not None else _OPTIONAL_TEXT, what, key)
    if default is ...:
        raise KeyError(key)
    return default


def _object(value: Any, what: str) -> dict[str, Any]:
    return _check(value, (dict,), what)


def _json_object(value: Any, what: str) -> dict[str, Any]:
    """A dict with string keys (slot values: any JSON)."""
    for key in _check(value, (dict,), what):
        if type(key) is not str:
            _check(key, _TEXT, f"a key of {what}")
    return value


def _count(value: Any, what: str) -> int:
    if _check(value, (int,), what) < 0:
        raise ValueError(f"{what} must not be negative, got {value}")
    return value


@dataclass
class PendingConfirmation:
    """A sensitive intent's form is complete; the next yes or no decides whether its action runs."""

    intent: str
    kind: ClassVar[str] = "confirm"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "intent": self.intent}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PendingConfirmation:
        return cls(intent=_text(data, "intent", "the pending question"))


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
        what = "a pending clarification's choice"
        data = _object(data, what)
        return cls(**{key: _text(data, key, what) for key in ("payload", "question", "answer", "id")})


@dataclass
class PendingClarification:
    """Several past answers were about as close; the next message may pick one (its button or number)."""

    choices: list[Choice]
    kind: ClassVar[str] = "clarify"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "choices": [c.to_dict() for c in self.choices]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PendingClarification:
        choices = _check(data["choices"], (list,), "the pending question", "choices")
        return cls(choices=[Choice.from_dict(c) for c in choices])


Pending = PendingConfirmation | PendingClarification
_PENDING_KINDS: dict[str, type[PendingConfirmation] | type[PendingClarification]] = {
    PendingConfirmation.kind: PendingConfirmation,
    PendingClarification.kind: PendingClarification,
}


def pending_from_dict(data: dict[str, Any] | None) -> Pending | None:
    """The pending question stored as ``data``; one of a kind this version does not know is dropped."""
    if data is None:
        return None
    kind = _PENDING_KINDS.get(_text(_object(data, "the pending question"), "kind", "the pending question", ""))
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
        data = _object(data, "a paused form")
        return cls(intent=_text(data, "intent", "a paused form"),
                   slots=dict(_json_object(data.get("slots") or {}, "a paused form's slots")),
                   requested_slot=_text(data, "requested_slot", "a paused form", None))


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
        data = _object(data, "a history entry")
        slots = data.get("slots")
        return cls(user=_text(data, "user", "a history entry"), bot=_text(data, "bot", "a history entry", ""),
                   source=_text(data, "source", "a history entry", ""),
                   intent=_text(data, "intent", "a history entry", None),
                   completed=_text(data, "completed", "a history entry", None),
                   slots=None if slots is None else _json_object(slots, "a history entry's slots"))


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
    #: Why the stored state was discarded when this turn loaded it (unreadable, or it did not fit the domain),
    #: so the turn can tell the customer; None normally. Never stored.
    reset_reason: str | None = field(default=None, compare=False, repr=False, metadata={"stored": False})

    def remember(self, turn: HistoryEntry) -> None:
        """Append a turn to ``history``, keeping the last :data:`HISTORY_LENGTH`."""
        self.history.append(turn)
        del self.history[:-HISTORY_LENGTH]

    def clear_form(self) -> None:
        """Drop the form in progress: its intent, slots, the slot asked and any pending question."""
        self.active_intent, self.slots, self.requested_slot, self.pending = None, {}, None, None

    def reset(self, reason: str) -> None:
        """Start the conversation over in place (every stored field back to a new session's), remembering
        ``reason`` in :attr:`reset_reason` for this turn."""
        fresh = SessionState(self.session_id)
        for name in _FIELD_NAMES:
            if name != "session_id":
                setattr(self, name, getattr(fresh, name))
        self.reset_reason = reason

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
        """Inverse of :meth:`to_dict`; unknown keys (from a newer version) are ignored, a missing one takes its
        default, and a field of the wrong type (or a nested part that lacks a key it needs) raises
        ``ValueError`` naming it."""
        data = _object(data, "a session state")
        values = {k: v for k, v in data.items() if k in _FIELD_NAMES}
        if "session_id" not in values:
            raise ValueError("a session state lacks its session_id")
        try:
            for name, kinds in _FIELD_TYPES.items():
                if name in values:
                    _check(values[name], kinds, name)
            for name in ("turn_count", "consecutive_failures"):
                if name in values:
                    _count(values[name], name)
            for name in ("slots", "variants"):
                if name in values:
                    _json_object(values[name], name)
            for template, index in values.get("variants", {}).items():
                _check(index, (int,), "variants", repr(template))
            values["paused"] = [PausedForm.from_dict(p) for p in values.get("paused") or []]
            values["pending"] = pending_from_dict(values.get("pending"))
            values["history"] = [HistoryEntry.from_dict(h) for h in values.get("history") or []]
        except KeyError as exc:
            raise ValueError(f"a paused form, pending question or history entry lacks {exc}") from exc
        return cls(**values)


#: The fields that are stored (all but :attr:`SessionState.reset_reason`).
_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(SessionState) if f.metadata.get("stored", True))
#: The JSON type of each stored field (nested parts are checked by their own ``from_dict``).
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "session_id": _TEXT, "turn_count": (int,), "active_intent": _OPTIONAL_TEXT, "slots": (dict,),
    "requested_slot": _OPTIONAL_TEXT, "consecutive_failures": (int,), "handoff": (bool,), "paused": (list, type(None)),
    "pending": (dict, type(None)), "variants": (dict,), "history": (list, type(None)), "channel": _OPTIONAL_TEXT,
    "recipient_id": _OPTIONAL_TEXT, "created_at": (int, float), "updated_at": (int, float),
}

__all__ = ["HISTORY_LENGTH", "Choice", "HistoryEntry", "PausedForm", "Pending", "PendingClarification",
           "PendingConfirmation", "SessionState", "pending_from_dict"]
