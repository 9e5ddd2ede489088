"""Mining Q&A pairs from transcripts: small talk dropped, turns joined, customer->agent pairing, duplicates merged."""

from __future__ import annotations

import pytest

from retrieval.mining import (
    Conversation,
    Turn,
    is_small_talk,
    mine_pairs,
    normalise_role,
    question_key,
)


def conversation(id, *turns, source="chats.jsonl:1"):
    return Conversation(id, [Turn(role, text) for role, text in turns], source)


@pytest.mark.parametrize("text", ["Hi!", "hello there", "Thanks so much!", "thank you", "ok", "Refund?", "bye", "  "])
def test_small_talk_and_one_word_turns(text):
    assert is_small_talk(text)


@pytest.mark.parametrize("text", ["Where is my order?", "refund order 48213", "thanks, where is my parcel"])
def test_questions_are_not_small_talk(text):
    assert not is_small_talk(text)


def test_roles_are_normalised():
    assert normalise_role(" User ") == "customer" and normalise_role("Support") == "agent"
    assert normalise_role("robot") is None


def test_greetings_thanks_and_one_word_turns_are_dropped():
    records = mine_pairs([conversation(
        "c1",
        ("customer", "Hello!"),
        ("agent", "Hi, welcome"),
        ("customer", "Where is my order?"),
        ("agent", "Thanks!"),
        ("agent", "It left the warehouse today."),
        ("customer", "Great, thanks"),
        ("agent", "Bye"),
    )])
    assert [(r.question, r.answer) for r in records] == [("Where is my order?", "It left the warehouse today.")]


def test_consecutive_turns_of_one_speaker_are_joined():
    records = mine_pairs([conversation(
        "c1",
        ("customer", "I was charged twice"),
        ("customer", "for order 48213."),
        ("agent", "Sorry about that."),
        ("agent", "I have refunded the second charge."),
    )])
    assert [(r.question, r.answer) for r in records] == [
        ("I was charged twice for order 48213.", "Sorry about that. I have refunded the second charge.")
    ]


def test_only_customer_then_agent_makes_a_pair():
    records = mine_pairs([conversation(
        "c1",
        ("agent", "How can I help you today?"),
        ("customer", "Can I pay by invoice?"),
        ("agent", "Yes, for business accounts."),
        ("customer", "And what about paypal payments?"),  # no reply follows
    )])
    assert [(r.question, r.answer) for r in records] == [("Can I pay by invoice?", "Yes, for business accounts.")]


def test_record_ids_are_conversation_and_turn_index():
    records = mine_pairs([conversation(
        "c7",
        ("customer", "Hi"),
        ("agent", "Hello, how may I help?"),
        ("customer", "Do you ship abroad?"),
        ("agent", "Yes, to the EU."),
        ("customer", "How long does it take?"),
        ("agent", "About a week."),
    )])
    # the index is the question's turn in the transcript, the dropped greeting counted
    assert [r.id for r in records] == ["c7:2", "c7:4"]
    assert all(r.source == "chats.jsonl:1" for r in records)


def test_near_duplicate_questions_merge_keeping_provenance():
    records = mine_pairs([
        conversation("c1", ("customer", "Where is my order?"), ("agent", "Check the Orders page."), source="a.json:2"),
        conversation("c2", ("customer", "where is my ORDER"), ("agent", "It ships in 2 days."), source="a.json:9"),
        conversation("c3", ("customer", "Can I return shoes?"), ("agent", "Within 30 days."), source="a.json:15"),
    ])
    assert [r.question for r in records] == ["Where is my order?", "Can I return shoes?"]
    kept = records[0]
    assert (kept.id, kept.answer) == ("c1:0", "Check the Orders page.")
    assert [p.to_dict() for p in kept.merged] == [
        {"id": "c2:0", "question": "where is my ORDER", "answer": "It ships in 2 days.", "source": "a.json:9"}
    ]
    assert records[1].merged == []


def test_question_key_ignores_case_punctuation_and_spacing_but_keeps_codes():
    assert question_key("  Where IS my order?!") == question_key("where is   my order")
    assert question_key("order AB-1234") != question_key("order AB-1235")
    assert question_key("mail me at a.b@example.com") == "mail me at a.b@example.com"
