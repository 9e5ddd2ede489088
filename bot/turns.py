"""What led to a reply, as data: the moves, the reason codes and :class:`TurnDetails`.

Every turn ends with a :class:`TurnDecision`: the move that was made (a policy :data:`Move` or one of the
manager's own :data:`SystemMove`), a :class:`ReasonCode` saying why, and a ``note`` in prose for logs and
``/debug``. Code that acts on a decision (tests, dashboards, transcript review) reads the code; only people
read the note. The codes are all defined here, once.

:class:`TurnDetails` is what a :class:`~bot.messages.Reply` carries beside its messages: the parse, the
decision, the slots, the retrieval hits, timings and the model and index versions.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Literal

Move = Literal[
    "start",      # begin an intent: fill its slots, confirm if sensitive, run its action, answer its template
    "fill_slot",  # the message answers (or corrects) a slot of the form in progress
    "switch",     # a new intent in the middle of a form: put the form aside, start the new one
    "cancel",     # the customer drops the form in progress
    "chitchat",   # greeting, thanks...: answer without touching the form
    "retrieve",   # search past answers
    "handoff",    # a person takes over
    "fallback",   # ask to rephrase
]
"""The moves a policy chooses between."""

SystemMove = Literal[
    "silent",       # the conversation is with a person: no reply
    "error",        # the session store, the NLU model or the turn itself failed: an apology
    "confirm",      # the message answers a pending confirmation (yes or no)
    "pick_choice",  # the message picks one of a clarification's choices
]
"""The moves the dialogue manager makes itself, before or instead of asking the policy."""


class ReasonCode(enum.StrEnum):
    """Why a turn went the way it did. A turn may pass through several (see :attr:`TurnDecision.codes`)."""

    # -- the manager, before the policy is asked
    EMPTY_MESSAGE = "empty_message"                    # blank text: not parsed, the fallback
    HANDED_OVER = "handed_over"                        # a person has the conversation: the bot stays silent
    STORE_UNAVAILABLE = "store_unavailable"            # the session store failed: an apology
    NLU_FAILED = "nlu_failed"                          # the model could not parse this message: an apology
    NLU_TIMED_OUT = "nlu_timed_out"                    # the model took too long for this message: an apology
    SESSION_RESET = "session_reset"                    # the stored state was unreadable or did not fit the
                                                       # domain: started over, with an apology (then the turn)
    TURN_FAILED = "turn_failed"                        # an unexpected error inside the turn: an apology,
                                                       # the session left as it was (a bug: see the log)
    CONFIRMED = "confirmed"                            # yes to a pending confirmation: the intent runs
    CONFIRMATION_DECLINED = "confirmation_declined"    # no to a pending confirmation: the form is dropped
    CLARIFICATION_ANSWERED = "clarification_answered"  # a clarification's choice picked: its answer given

    # -- the policy
    ASKED_FOR_PERSON = "asked_for_person"              # a confident hand-over intent: a person takes over
    COMPLAINT = "complaint"                            # a confident complaint: a person takes over
    FORM_DROPPED = "form_dropped"                      # a confident stop during a form: the form is cancelled
    FORM_LEFT = "form_left"                            # "never mind", "no thanks" during a form: it is dropped,
                                                       # and the forms put aside with it (none comes back later)
    NOTHING_TO_STOP = "nothing_to_stop"                # a stop with no form in progress
    SMALL_TALK = "small_talk"                          # chit-chat, answered beside any form in progress
    QUESTION = "question"                              # an intent marked as a question for the Q&A index
    TOPIC_SWITCH = "topic_switch"                      # another request during a form: the form is put aside
    SLOT_ANSWER = "slot_answer"                        # during a form: taken as the answer to the slot asked
    VALUE_WITHOUT_QUESTION = "value_without_question"  # a bare value with no form: maybe a correction
    INTENT_RECOGNISED = "intent_recognised"            # a confident request: its form starts
    OUT_OF_SCOPE = "out_of_scope"                      # the model calls the message out of scope: searched
    OUT_OF_SCOPE_IN_FORM = "out_of_scope_in_form"      # the same during a form, when the message is no value for
                                                       # the slot asked: answered, then the slot asked again
    LOW_CONFIDENCE = "low_confidence"                  # the intent is below its threshold: searched
    UNSPECIFIED = "unspecified"                        # a (custom) policy's decision that names no code

    # -- carrying the move out
    CONFIRMATION_ASKED = "confirmation_asked"          # a sensitive intent's form is complete: yes or no?
    CONFIRMATION_ASKED_AGAIN = "confirmation_asked_again"  # a question at a confirmation answered, then it again
    CORRECTION = "correction"                          # a value redoes the request just completed
    SLOT_CARRIED_OVER = "slot_carried_over"            # a follow-up that refers back ("cancel it") takes a value
                                                       # of the request just completed
    NO_QUESTION_PENDING = "no_question_pending"        # a value with nothing to correct: the fallback
    INVALID_VALUE = "invalid_value"                    # the slot refuses the value: the reason, the question again
    VALUE_TOO_LONG = "value_too_long"                  # as INVALID_VALUE, refused for its length before any pattern
    INVALID_VALUES = "invalid_values"                  # too many invalid values in a row: a person takes over
    ACTION_FAILED = "action_failed"                    # the intent's action raised: an apology, the form dropped
    ACTION_TIMED_OUT = "action_timed_out"              # the intent's action took too long: as ACTION_FAILED
    NO_INDEX = "no_index"                              # retrieval wanted but no Q&A index: the fallback
    RETRIEVAL_FAILED = "retrieval_failed"              # the Q&A search failed or took too long: the fallback
    NO_CLOSE_ANSWER = "no_close_answer"                # no past answer within the margin of the threshold
    BELOW_THRESHOLD = "below_threshold"                # the closest answer is within the margin, but below
    AMBIGUOUS = "ambiguous"                            # several answers are about as close: which one?
    REPEATED_FAILURES = "repeated_failures"            # too many turns in a row not understood: hand-over


@dataclass
class TurnDecision:
    """The move a turn made and why: ``code`` is the last reason given, ``earlier`` the ones it replaced
    (a low-confidence search that found nothing: ``LOW_CONFIDENCE`` then ``NO_CLOSE_ANSWER``)."""

    move: Move | SystemMove
    code: ReasonCode
    note: str = ""
    earlier: list[ReasonCode] = field(default_factory=list)

    @property
    def codes(self) -> list[ReasonCode]:
        """Every reason the turn went through, in order; the last is :attr:`code`."""
        return [*self.earlier, self.code]

    def because(self, code: ReasonCode, note: str | None = None) -> None:
        """A later step of the turn gives the reason now: ``code`` replaces the code (the old one is kept in
        ``earlier``), ``note`` the note when given."""
        if code is not self.code:
            self.earlier.append(self.code)
            self.code = code
        if note is not None:
            self.note = note

    def to_dict(self) -> dict[str, Any]:
        return {"move": self.move, "code": self.code.value, "earlier": [c.value for c in self.earlier],
                "note": self.note}

    def __str__(self) -> str:
        return f"{self.code.value}: {self.note}" if self.note else self.code.value


@dataclass(frozen=True)
class EntityValue:
    """An entity the model found, reduced to what a reader of the turn needs."""

    entity: str
    value: str

    def to_dict(self) -> dict[str, str]:
        return {"entity": self.entity, "value": self.value}


@dataclass(frozen=True)
class HitSummary:
    """A past answer retrieval offered (or the clarification choice picked, which has no scores)."""

    id: str
    question: str
    score: float | None = None
    rank_score: float | None = None
    #: the intent the Q&A record is labelled with, when it has one (what evaluation attributes the answer to)
    intent: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "question": self.question}
        if self.score is not None:
            out["score"] = self.score
        if self.rank_score is not None:
            out["rank_score"] = self.rank_score
        if self.intent is not None:
            out["intent"] = self.intent
        return out


@dataclass
class Timings:
    """Where the turn's time went, in milliseconds; ``None`` for a step the turn did not take."""

    total_ms: float = 0.0
    nlu_ms: float | None = None
    retrieval_ms: float | None = None
    #: taking the session's lock and loading its state, then saving it and releasing the lock
    store_ms: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {"total_ms": self.total_ms, "nlu_ms": self.nlu_ms, "retrieval_ms": self.retrieval_ms,
                "store_ms": self.store_ms}


@dataclass(frozen=True)
class Versions:
    """Versions and creation times (ISO-8601 UTC) of the NLU model and the Q&A index that answered, from
    their manifests ("" when unknown or absent)."""

    model: str = ""
    index: str = ""
    model_created: str = ""
    index_created: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"model": self.model, "index": self.index, "model_created": self.model_created,
                "index_created": self.index_created}


def _no_decision() -> TurnDecision:
    return TurnDecision("fallback", ReasonCode.UNSPECIFIED)


@dataclass
class TurnDetails:
    """What led to a reply: for ``/debug``, conversation tests, transcripts and logs; a channel does not
    send it. ``slots`` are the values the turn ended with (those of the request it completed, if any),
    ``completed`` the intent completed this turn, ``requested_slot`` the slot the bot is now asking for."""

    intent: str | None = None
    confidence: float | None = None
    out_of_scope: bool | None = None
    #: the NLU's out-of-scope score: similarity to the nearest training examples (None: the model has none)
    oos_score: float | None = None
    entities: list[EntityValue] = field(default_factory=list)
    decision: TurnDecision = field(default_factory=_no_decision)
    slots: dict[str, Any] = field(default_factory=dict)
    completed: str | None = None
    requested_slot: str | None = None
    hits: list[HitSummary] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)
    versions: Versions = field(default_factory=Versions)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {
            "intent": self.intent,
            "confidence": self.confidence,
            "out_of_scope": self.out_of_scope,
            "oos_score": self.oos_score,
            "entities": [e.to_dict() for e in self.entities],
            "decision": self.decision.to_dict(),
            "slots": dict(self.slots),
            "completed": self.completed,
            "requested_slot": self.requested_slot,
            "hits": [h.to_dict() for h in self.hits],
            "timings": self.timings.to_dict(),
            "versions": self.versions.to_dict(),
        }


__all__ = ["EntityValue", "HitSummary", "Move", "ReasonCode", "SystemMove", "Timings", "TurnDecision",
           "TurnDetails", "Versions"]
