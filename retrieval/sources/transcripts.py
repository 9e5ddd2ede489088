"""Historical chat transcripts, mined into Q&A pairs (see :mod:`retrieval.mining`).

JSON: a list of conversations (or ``{"conversations": [...]}``); JSONL: one conversation a line. A
conversation is ``{"id", "turns": [{"role", "text"}, ...]}`` (``messages``, ``speaker``, ``message`` and
``content`` are accepted too) or a bare list of turns. CSV: rows of (conversation id, role, text) in order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from csbot.datafiles import csv_rows, find_column, has_suffix, read_head, read_text
from csbot.errors import DataError
from retrieval.mining import Conversation, Turn, mine_pairs, normalise_role
from retrieval.records import QARecord

from .base import QASource

TURN_KEYS = ("turns", "messages", "dialogue", "dialog")
ROLE_KEYS = ("role", "speaker", "from", "author")
TEXT_KEYS = ("text", "message", "content", "body")
ID_KEYS = ("id", "conversation_id", "session_id")
CONVERSATION_COLUMNS = ("conversation_id", "conversation", "session_id", "dialog_id", "chat_id", "id")


def _first(data: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    return next((data[k] for k in keys if k in data), None)


def _looks_like_conversation(value: Any) -> bool:
    if isinstance(value, dict):
        return any(k in value for k in TURN_KEYS)
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict) and any(k in value[0] for k in ROLE_KEYS)


def conversation_from(value: Any, fallback_id: str, path: Path, line: int) -> Conversation:
    """One conversation from its decoded JSON; a malformed one raises DataError naming the line."""
    if isinstance(value, dict):
        turns = _first(value, TURN_KEYS)
        conversation_id = _first(value, ID_KEYS)
    else:
        turns, conversation_id = value, None
    if not isinstance(turns, list):
        raise DataError(f"a conversation needs a list of turns under one of {', '.join(TURN_KEYS)}", path, line)
    conversation = Conversation(str(conversation_id if conversation_id is not None else fallback_id),
                                source=f"{path.name}:{line}")
    for position, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict):
            raise DataError(f"turn {position} is not an object with a role and a text", path, line)
        role, text = _first(turn, ROLE_KEYS), _first(turn, TEXT_KEYS)
        if not isinstance(role, str) or normalise_role(role) is None:
            raise DataError(
                f"turn {position}: unknown speaker role {role!r} (use customer or agent)", path, line
            )
        if not isinstance(text, str):
            raise DataError(f"turn {position}: missing text", path, line)
        conversation.turns.append(Turn(normalise_role(role) or "", text))
    return conversation


class JsonTranscripts(QASource):
    """``*.json`` / ``*.jsonl`` files of conversations."""

    name = "transcripts_json"

    def sniff(self, path: Path) -> bool:
        if has_suffix(path, ".jsonl", ".ndjson"):
            first = next((line for line in read_head(path).splitlines() if line.strip()), "")
            return _looks_like_conversation(json.loads(first))
        if has_suffix(path, ".json"):
            head = read_head(path).lstrip()
            if not head.startswith(("[", "{")):
                return False
            try:
                return _looks_like_conversation(_first_conversation(head))
            except (json.JSONDecodeError, IndexError):  # the first one does not fit in the head
                return any(f'"{k}"' in head for k in TURN_KEYS)
        return False

    def load(self, path: Path, options: Mapping[str, Any]) -> list[QARecord]:
        text = read_text(path)
        conversations = []
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            for number, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    conversations.append(conversation_from(_decode(line, path, number), str(number), path, number))
        else:
            for index, (value, number) in enumerate(_top_level_items(text, path), start=1):
                conversations.append(conversation_from(value, str(index), path, number))
        return mine_pairs(conversations)


def _first_conversation(head: str) -> Any:
    """The first item of a JSON list, or of the list under ``"conversations"``, decoded from the file's head.

    Only the item's structure tells a transcript from other JSON: keys such as ``"from"`` appear in NLU data
    too (NLU++ date slots). None when the document is neither shape.
    """
    if head.startswith("["):
        start = 1
    else:
        match = re.search(r'"conversations"\s*:\s*\[', head)
        if match is None:
            return None
        start = match.end()
    while head[start] in " \t\r\n":
        start += 1
    return json.JSONDecoder().raw_decode(head, start)[0]


def _decode(line: str, path: Path, number: int) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg} (column {exc.colno})", path, number) from exc


def _top_level_items(text: str, path: Path) -> list[tuple[Any, int]]:
    """Each conversation of a JSON document with the line it starts on."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg} (column {exc.colno})", path, exc.lineno) from exc
    if isinstance(document, dict) and isinstance(document.get("conversations"), list):
        items, opening = document["conversations"], text.index("[", text.index('"conversations"'))
    elif isinstance(document, list):
        items, opening = document, text.index("[")
    else:
        raise DataError("expected a list of conversations or {\"conversations\": [...]}", path, 1)
    decoder, out, index = json.JSONDecoder(), [], opening + 1
    for item in items:
        while text[index] in " \t\r\n,":
            index += 1
        out.append((item, text.count("\n", 0, index) + 1))
        _, index = decoder.raw_decode(text, index)
    return out


class CsvTranscripts(QASource):
    """``*.csv`` rows of (conversation id, role, text), turns in file order."""

    name = "transcripts_csv"

    def sniff(self, path: Path) -> bool:
        if not has_suffix(path, ".csv"):
            return False
        header = [c.strip().strip('"').lower() for c in read_head(path, 4096).splitlines()[0].split(",")]
        return (any(c in header for c in CONVERSATION_COLUMNS) and any(c in header for c in ROLE_KEYS)
                and "question" not in header)

    def load(self, path: Path, options: Mapping[str, Any]) -> list[QARecord]:
        header, rows = csv_rows(path, "conversation_id,role,text")
        conv_i = find_column(header, options.get("conversation_column"), CONVERSATION_COLUMNS, "conversation", path)
        role_i = find_column(header, options.get("role_column"), ROLE_KEYS, "role", path)
        text_i = find_column(header, options.get("text_column"), TEXT_KEYS, "text", path)
        conversations: dict[str, Conversation] = {}
        for line, row in rows:
            role = normalise_role(row[role_i])
            if role is None:
                raise DataError(f"unknown speaker role {row[role_i]!r} (use customer or agent)", path, line)
            key = row[conv_i].strip()
            if not key:
                raise DataError("empty conversation id", path, line)
            conversation = conversations.setdefault(key, Conversation(key, source=f"{path.name}:{line}"))
            conversation.turns.append(Turn(role, row[text_i]))
        return mine_pairs(list(conversations.values()))
