"""Raw helpdesk history and handed-over conversations as review sources."""

from __future__ import annotations

import json

import pytest
from review_helpers import agent, parse, turn

from csbot.errors import DataError
from nlu.schema import IntentScore, ParseResult
from training.review import handoff_qa_items, helpdesk_file_items, merge_duplicates, read_conversations

CONVERSATIONS = [
    {"id": "c1", "turns": [
        {"role": "customer", "text": "hi"},
        {"role": "agent", "text": "Hello! How can I help?"},
        {"role": "customer", "text": "How long does delivery to Norway take?"},
        {"role": "agent", "text": "Usually five working days."},
        {"role": "customer", "text": "thanks"},
    ]},
    {"id": "c2", "messages": [
        {"speaker": "user", "message": "how long does delivery to norway take"},
        {"speaker": "support", "message": "About a week."},
        {"speaker": "user", "message": "Can I pay by invoice?"},
    ]},
]


@pytest.fixture
def helpdesk_json(tmp_path):
    path = tmp_path / "history.json"
    path.write_text(json.dumps({"conversations": CONVERSATIONS}, indent=1))
    return path


def test_helpdesk_gives_examples_to_label_and_qa_candidates(helpdesk_json):
    items = helpdesk_file_items(helpdesk_json)
    examples = [i for i in items if i.kind == "example"]
    assert [(i.text, i.intent, i.review.session_id, i.review.turn, i.review.source) for i in examples] == [
        ("How long does delivery to Norway take?", "", "c1", 3, "helpdesk"),
        ("how long does delivery to norway take", "", "c2", 1, "helpdesk"),
        ("Can I pay by invoice?", "", "c2", 3, "helpdesk"),
    ]
    assert all(i.review.confidence is None and i.review.margin is None for i in examples)
    qa = [i for i in items if i.kind == "qa"]
    # the two conversations ask the same question: mined into one candidate that counts both
    assert [(i.text, i.answer, i.review.count, i.review.sessions) for i in qa] == [
        ("How long does delivery to Norway take?", "Usually five working days.", 2, ["c1", "c2"])]
    merged = merge_duplicates(items)
    assert [(i.kind, i.review.count) for i in merged] == [("example", 2), ("example", 1), ("qa", 2)]


def test_helpdesk_with_a_parser_fills_the_guess(helpdesk_json):
    seen = []

    def parser(texts):
        seen.append(list(texts))
        out = []
        for text in texts:
            ranking = [IntentScore("delivery_times", 0.6), IntentScore("payment_methods", 0.3)]
            if "invoice" in text:
                ranking.reverse()
            out.append(ParseResult(text, ranking[0], ranking, [], False))
        return out

    items = helpdesk_file_items(helpdesk_json, parser, model_version="v9")
    assert len(seen) == 1 and len(seen[0]) == 4  # one batch: three messages and one question
    assert [(i.kind, i.intent, i.review.model_version) for i in items] == [
        ("example", "delivery_times", "v9"), ("example", "delivery_times", "v9"),
        ("example", "payment_methods", "v9"), ("qa", "delivery_times", "v9")]
    assert items[0].review.margin == pytest.approx(0.3)


def test_helpdesk_csv_and_jsonl(tmp_path):
    csv_path = tmp_path / "history.csv"
    csv_path.write_text("conversation_id,role,text\nk1,customer,Do you ship to Iceland?\n"
                        "k1,agent,Yes we do.\nk2,customer,Where is order 5512?\n")
    items = helpdesk_file_items(csv_path)
    assert [(i.kind, i.text) for i in items] == [
        ("example", "Do you ship to Iceland?"), ("example", "Where is order 5512?"), ("qa", "Do you ship to Iceland?")]
    jsonl = tmp_path / "history.jsonl"
    jsonl.write_text("\n".join(json.dumps(c) for c in CONVERSATIONS) + "\n")
    assert [c.id for c in read_conversations(jsonl)] == ["c1", "c2"]


def test_helpdesk_errors_name_the_line(tmp_path):
    bad = tmp_path / "history.jsonl"
    bad.write_text(json.dumps(CONVERSATIONS[0]) + "\n" + json.dumps({"id": "x", "turns": [{"role": "cat", "text": "m"}]}))
    with pytest.raises(DataError, match=rf"{bad}:2: turn 1: unknown speaker role 'cat'"):
        read_conversations(bad)
    other = tmp_path / "history.txt"
    other.write_text("hello")
    with pytest.raises(DataError):
        read_conversations(other)


def test_handed_over_conversations_give_qa_candidates():
    turns = [
        turn("h1", 1, "hello there", parsed=parse("greet", 0.9)),
        turn("h1", 2, "my card was charged twice", parsed=parse("payment", 0.4), source="fallback"),
        turn("h1", 3, "this is useless, get me a person", parsed=parse("human_handoff", 0.97), source="handoff",
             handoff=True),
        turn("h1", 4, "I paid for order 7781 twice", parsed=parse("payment", 0.5), source="silent",
             code="handed_over", handoff=True),
        agent("h1", 5, "I see it, the second charge is refunded now."),
        turn("h1", 6, "thanks", parsed=parse("thanks", 0.99), source="silent", code="handed_over"),
        agent("h1", 7, "You're welcome"),
        turn("h1", 8, "undelivered", source="undelivered"),
        # the bot answered this conversation itself: no candidates
        turn("h2", 1, "where is my parcel", parsed=parse("track_order", 0.9)),
        # an agent stepped in without a hand-over turn: the customer message before counts
        turn("h3", 1, "can I change my delivery address", parsed=parse("change_address", 0.45), source="retrieve"),
        agent("h3", 2, "Yes, send me the new address and I will update it.", name=""),  # source agent alone
    ]
    items = handoff_qa_items(turns)
    assert [(i.kind, i.text, i.answer, i.review.source, i.review.session_id) for i in items] == [
        # the customer's "thanks" is small talk, so the agent's two messages join into one answer (as mining does)
        ("qa", "this is useless, get me a person I paid for order 7781 twice",
         "I see it, the second charge is refunded now. You're welcome", "handoff", "h1"),
        ("qa", "can I change my delivery address", "Yes, send me the new address and I will update it.",
         "handoff", "h3"),
    ]
    first = items[0]
    assert (first.intent, first.review.turn, first.review.model_version) == ("human_handoff", 3, "v7")
