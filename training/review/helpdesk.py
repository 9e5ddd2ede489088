"""Review items from conversations people had: raw helpdesk history, and hand-overs in the transcript log.

Raw helpdesk history (the JSON, JSONL and CSV conversations :mod:`retrieval.sources.transcripts` reads, with
its speaker roles) gives two kinds of item:

* an **example** per customer message (greetings, thanks and one-word turns left out, as
  :func:`retrieval.mining.is_small_talk` decides): the intent is empty for the reviewer to fill, or the
  guess of an optional ``parse`` callable (``parse(texts) -> [ParseResult or its dict, ...]``, one per text);
* a **Q&A candidate** (``kind: qa``) per customer question with the agent reply that followed it, mined by
  :func:`retrieval.mining.mine_pairs` (small talk dropped, one speaker's consecutive turns joined,
  identical questions merged and counted).

A conversation of the transcript log that was handed over to a person gives Q&A candidates the same way
(:func:`handoff_qa_items`): from the hand-over on, the customer's messages are questions and the agent's
messages (turns of source ``agent``, with an ``author``) their answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csbot.errors import DataError
from retrieval.mining import Conversation, Turn, is_small_talk, mine_pairs
from retrieval.records import QARecord
from retrieval.sources.transcripts import csv_conversations, json_conversations
from training.review.items import MAX_SESSIONS, ReviewItem

if TYPE_CHECKING:
    from csbot.transcripts import TranscriptTurn

#: ``parse(texts)``: one parse result per text, a :class:`nlu.schema.ParseResult` or its ``to_dict()``.
Parser = Callable[[list[str]], Sequence[Any]]


def read_conversations(path: str | Path) -> list[Conversation]:
    """The conversations of a helpdesk history file: ``.json``, ``.jsonl``/``.ndjson`` or ``.csv``, in the
    layouts :mod:`retrieval.sources.transcripts` documents. A malformed one raises DataError naming the line."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        conversations = json_conversations(path)
    elif suffix == ".csv":
        conversations = csv_conversations(path)
    else:
        raise DataError("helpdesk history must be a .json, .jsonl or .csv file of conversations", path)
    if not conversations:
        raise DataError("no conversations in this file", path)
    return conversations


def _parse_dicts(parse: Parser | None, texts: list[str]) -> list[dict[str, Any] | None]:
    """The parser's guesses as dicts, one per text (all None without a parser)."""
    if parse is None or not texts:
        return [None] * len(texts)
    results = list(parse(texts))
    if len(results) != len(texts):
        raise ValueError(f"the parser returned {len(results)} results for {len(texts)} texts")
    out: list[dict[str, Any] | None] = []
    for result in results:
        if hasattr(result, "to_dict"):
            result = result.to_dict()
        if result is not None and not isinstance(result, Mapping):
            raise TypeError(f"a parse result must be a ParseResult or a dict, not {type(result).__name__}")
        out.append(None if result is None else dict(result))
    return out


def _sessions_of(record: QARecord) -> tuple[str, list[str]]:
    """The conversation id of a mined record (``<conversation id>:<turn index>``) and those of its merged ones."""
    ids = [record.id, *(p.id for p in record.merged)]
    sessions: list[str] = []
    for each in ids:
        session = each.rpartition(":")[0] or each
        if session not in sessions and len(sessions) < MAX_SESSIONS:
            sessions.append(session)
    return sessions[0], sessions


def helpdesk_items(conversations: Iterable[Conversation], parse: Parser | None = None,
                   model_version: str = "") -> list[ReviewItem]:
    """Examples from every customer message and Q&A candidates from every question answered by an agent.

    Without ``parse`` the examples' intents are empty (the reviewer fills them); with it they carry its guess
    and its uncertainty. Duplicates are left for :func:`training.review.export.merge_duplicates`.
    """
    conversations = list(conversations)
    customer: list[tuple[Conversation, int, str]] = []
    for conversation in conversations:
        for position, turn in enumerate(conversation.turns, start=1):
            text = turn.text.strip()
            if turn.role == "customer" and text and not is_small_talk(text):
                customer.append((conversation, position, text))
    records = mine_pairs(conversations)
    guesses = _parse_dicts(parse, [text for _, _, text in customer] + [r.question for r in records])
    items = []
    for (conversation, position, text), guess in zip(customer, guesses):
        items.append(ReviewItem.from_parse(text, guess, source="helpdesk", session_id=conversation.id,
                                           turn=position, model_version=model_version if guess else ""))
    for record, guess in zip(records, guesses[len(customer):]):
        session, sessions = _sessions_of(record)
        item = ReviewItem.from_parse(record.question, guess, source="helpdesk", session_id=session,
                                     model_version=model_version if guess else "", kind="qa",
                                     answer=record.answer)
        index = record.id.rpartition(":")[2]
        item.review.turn = int(index) + 1 if index.isdigit() else None
        item.review.sessions, item.review.count = sessions, 1 + len(record.merged)
        items.append(item)
    return items


def helpdesk_file_items(path: str | Path, parse: Parser | None = None, model_version: str = "") -> list[ReviewItem]:
    """:func:`helpdesk_items` of one file read by :func:`read_conversations`."""
    return helpdesk_items(read_conversations(path), parse, model_version)


def _agent_text(turn: TranscriptTurn) -> str:
    messages = turn.reply.get("messages") if isinstance(turn.reply, dict) else None
    texts = [str(m.get("text", "")).strip() for m in messages or [] if isinstance(m, dict)]
    return " ".join(t for t in texts if t)


def handoff_qa_items(turns: Iterable[TranscriptTurn]) -> list[ReviewItem]:
    """Q&A candidates from the conversations of a transcript log that were handed over to a person.

    From the turn that shows the hand-over (source ``handoff``, the reply's ``handoff`` flag, reason code
    ``handed_over``, or the first agent message, then with the customer message before it), the customer's
    messages are questions and the messages an agent wrote (source ``agent``, ``author`` set) the answers:
    each question with the agent answer that followed it, paired by :func:`retrieval.mining.mine_pairs`.
    Undelivered replies and the bot's own messages are left out. The question is pre-filled with the model's
    guess for the customer message that opened it.
    """
    from training.review.export import handed_over, is_customer_turn

    by_session: dict[str, list[TranscriptTurn]] = {}
    for turn in turns:
        by_session.setdefault(turn.session_id, []).append(turn)
    conversations: list[Conversation] = []
    origin: dict[str, list[TranscriptTurn]] = {}
    for session, session_turns in by_session.items():
        ordered = sorted(session_turns, key=lambda t: t.timestamp)  # stable: log order among equal times
        start = next((i for i, t in enumerate(ordered) if handed_over(t)), None)
        if start is None:
            continue
        if start > 0 and not is_customer_turn(ordered[start]) and is_customer_turn(ordered[start - 1]):
            start -= 1
        conversation = Conversation(session, source=f"transcripts:{session}")
        kept: list[TranscriptTurn] = []
        for turn in ordered[start:]:
            if turn.source == "undelivered":
                continue
            if turn.author or turn.source == "agent":
                conversation.turns.append(Turn("agent", _agent_text(turn)))
            elif is_customer_turn(turn):
                conversation.turns.append(Turn("customer", turn.user_text))
            else:
                continue
            kept.append(turn)
        conversations.append(conversation)
        origin[session] = kept
    items = []
    for record in mine_pairs(conversations):
        session, sessions = _sessions_of(record)
        index = record.id.rpartition(":")[2]
        first = origin[session][int(index)] if index.isdigit() and session in origin else None
        item = ReviewItem.from_parse(
            record.question, first.parse if first else None, source="handoff", session_id=session,
            turn=first.turn if first else None, timestamp=first.timestamp if first else None,
            model_version=str(first.versions.get("nlu", "") or "") if first else "", kind="qa",
            answer=record.answer,
        )
        item.review.sessions, item.review.count = sessions, 1 + len(record.merged)
        items.append(item)
    return items


__all__ = ["Parser", "handoff_qa_items", "helpdesk_file_items", "helpdesk_items", "read_conversations"]
