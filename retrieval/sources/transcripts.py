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

from csbot.datafiles import csv_header, csv_rows, find_column, first_line, has_suffix, jsonl_lines, read_head
from csbot.errors import DataError
from csbot.strict_json import json_item_lines, loads_json, read_json
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
            first = first_line(path)  # read whole, however long
            return first is not None and _looks_like_conversation(loads_json(first, path, 1))
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
        """Every conversation, mined into Q&A pairs; JSONL lines end at ``\\n`` only, JSON is read strictly."""
        conversations = json_conversations(path)
        if not conversations:
            raise DataError("no conversations in this file", path)
        return mine_pairs(conversations)


def json_conversations(path: Path) -> list[Conversation]:
    """The conversations of a ``.json`` file (a list, or ``{"conversations": [...]}``) or a ``.jsonl`` one (one a
    line), each with the line it starts on; a malformed one raises DataError naming the line."""
    conversations = []
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        for number, line in jsonl_lines(path):
            conversations.append(conversation_from(loads_json(line, path, number), str(number), path, number))
    else:
        text, document = read_json(path)
        for index, (value, number) in enumerate(_top_level_items(text, document, path), start=1):
            conversations.append(conversation_from(value, str(index), path, number))
    return conversations


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


def _top_level_items(text: str, document: Any, path: Path) -> list[tuple[Any, int]]:
    """Each conversation of a decoded JSON document with the line it starts on."""
    if isinstance(document, dict) and isinstance(document.get("conversations"), list):
        items, steps = document["conversations"], ["conversations"]
    elif isinstance(document, list):
        items, steps = document, []
    else:
        raise DataError("expected a list of conversations or {\"conversations\": [...]}", path, 1)
    lines = json_item_lines(text, steps)
    if len(lines) != len(items):  # cannot happen for a document that decoded; keep the items, not the lines
        lines = [1] * len(items)
    return list(zip(items, lines, strict=True))


class CsvTranscripts(QASource):
    """``*.csv`` rows of (conversation id, role, text), turns in file order."""

    name = "transcripts_csv"

    def sniff(self, path: Path) -> bool:
        if not has_suffix(path, ".csv"):
            return False
        header = csv_header(path)
        return (any(c in header for c in CONVERSATION_COLUMNS) and any(c in header for c in ROLE_KEYS)
                and "question" not in header)

    def load(self, path: Path, options: Mapping[str, Any]) -> list[QARecord]:
        conversations = csv_conversations(path, options)
        if not conversations:
            raise DataError("no conversations in this file (a header and no rows)", path)
        return mine_pairs(conversations)


def csv_conversations(path: Path, options: Mapping[str, Any] | None = None) -> list[Conversation]:
    """The conversations of a CSV of (conversation id, role, text) rows, turns in file order; the columns are
    found by name (``conversation_column``, ``role_column``, ``text_column`` in ``options`` pick others)."""
    options = options or {}
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
    return list(conversations.values())
