"""Builders shared by the review tests: transcript turns as the bot logs them, and review items."""

from __future__ import annotations

from typing import Any

from csbot.transcripts import TranscriptTurn
from training.review import ReviewInfo, ReviewItem, item_id

BASE_TIME = 1_714_557_600.0


def parse(intent: str, confidence: float, ranking: list[tuple[str, float]] | None = None, **extra: Any) -> dict:
    """A parse dict shaped as ``DialogueManager._log`` records it."""
    ranking = ranking if ranking is not None else [(intent, confidence)]
    return {"intent": {"name": intent, "confidence": confidence},
            "intent_ranking": [{"name": n, "confidence": c} for n, c in ranking],
            "entities": extra.pop("entities", []), "out_of_scope": extra.pop("out_of_scope", False), **extra}


def turn(session: str, seq: int, text: str, *, source: str = "template", code: str = "intent_recognised",
         parsed: dict | None = None, reply: str = "ok", author: str = "", handoff: bool = False,
         offset: float | None = None) -> TranscriptTurn:
    """A customer turn (or, with ``author``, an agent's message) of one conversation."""
    return TranscriptTurn(
        session_id=session, channel="web", user_text=text, decision=source, source=source,
        reply={"messages": [{"text": reply}], "source": source, "handoff": handoff},
        parse=parsed, turn=seq, code=code, author=author, versions={"nlu": "v7", "index": "i3"},
        timestamp=BASE_TIME + (seq if offset is None else offset),
    )


def agent(session: str, seq: int, text: str, name: str = "ann") -> TranscriptTurn:
    """An agent's message as ``bot.conversations.outgoing_turn`` records it."""
    return turn(session, seq, "", source="agent", code="", reply=text, author=name, handoff=True)


def item(text: str, predicted: str, margin: float | None, *, entropy: float | None = None, intent: str | None = None,
         decision: str | None = None, kind: str = "example", answer: str | None = None, entities=None,
         count: int = 1) -> ReviewItem:
    return ReviewItem(text=text, intent=predicted if intent is None else intent, entities=list(entities or []),
                      review=ReviewInfo(id=item_id(text, kind), predicted_intent=predicted, margin=margin,
                                        entropy=entropy, decision=decision, count=count),
                      kind=kind, answer=answer)
