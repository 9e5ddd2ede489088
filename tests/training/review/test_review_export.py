"""Selecting transcript turns for review, merging near-duplicates, choosing the budget, the review file."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from review_helpers import BASE_TIME, agent, parse, turn

from csbot.errors import DataError
from training.review import (
    choose,
    export_review,
    item_from_turn,
    merge_duplicates,
    parse_since,
    read_review_file,
    select_turns,
    write_review_file,
)
from training.review.export import is_customer_turn


def texts(turns):
    return [t.user_text for t in turns]


@pytest.fixture
def log():
    return [
        turn("s1", 1, "hello there friend", parsed=parse("greet", 0.95)),
        turn("s1", 2, "my parcel never came", parsed=parse("track_order", 0.3, [("track_order", 0.3), ("complaint", 0.25)]),
             source="retrieve", code="low_confidence"),
        turn("s1", 3, "threshold above the default", parsed=parse("refund", 0.6, threshold=0.7)),
        turn("s1", 4, "what is the meaning of life", parsed=parse("chitchat", 0.9, out_of_scope=True),
             source="retrieve", code="out_of_scope"),
        turn("s2", 1, "blorp the flarg", parsed=parse("greet", 0.8), source="fallback", code="no_close_answer"),
        turn("s2", 2, "the delivery or the return", parsed=parse("refund", 0.8), source="clarify", code="ambiguous"),
        turn("s2", 3, "close but not close enough", parsed=parse("refund", 0.8), source="fallback",
             code="below_threshold"),
        turn("s3", 1, "I want a human now", parsed=parse("human_handoff", 0.97), source="handoff",
             code="asked_for_person", handoff=True),
        turn("s3", 2, "my card was charged twice", parsed=parse("payment", 0.9), source="silent", code="handed_over",
             handoff=True),
        agent("s3", 3, "Sorry about that, I have refunded the second charge."),
        # the bot's own undelivered reply, and an agent's record that happens to carry text, are never examples
        turn("s2", 4, "undelivered text", parsed=parse("greet", 0.1), source="undelivered"),
        turn("s3", 4, "agent typed this", parsed=parse("greet", 0.1), source="agent", author="bob"),
        turn("s3", 5, "an agent wrote this too", parsed=parse("greet", 0.1), source="silent", author="bob"),
    ]


def test_low_confidence_uses_the_recorded_threshold_and_out_of_scope(log):
    assert texts(select_turns(log, "low-confidence")) == [
        "my parcel never came", "threshold above the default", "what is the meaning of life"]


def test_fallback_selects_fallback_clarify_and_below_threshold(log):
    assert texts(select_turns(log, "fallback")) == [
        "blorp the flarg", "the delivery or the return", "close but not close enough"]


def test_handoff_selects_the_customer_turns_of_handed_over_conversations(log):
    assert texts(select_turns(log, "handoff")) == ["I want a human now", "my card was charged twice"]


def test_all_never_includes_agents_or_undelivered_records(log):
    selected = texts(select_turns(log, "all"))
    assert len(selected) == 9
    assert "undelivered text" not in selected and "agent typed this" not in selected and "" not in selected
    assert "an agent wrote this too" not in selected  # any turn with an author is a person's, whatever its source
    assert not is_customer_turn(log[9])  # the agent's message


def test_since_drops_older_turns(log):
    assert texts(select_turns(log, "fallback", since=BASE_TIME + 2)) == [
        "the delivery or the return", "close but not close enough"]
    with pytest.raises(ValueError):
        select_turns(log, "everything")


def test_parse_since():
    now = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now) == (now - timedelta(days=7)).timestamp()
    assert parse_since("12h", now) == (now - timedelta(hours=12)).timestamp()
    assert parse_since("2024-05-01T00:00+00:00") == datetime(2024, 5, 1, tzinfo=UTC).timestamp()
    assert parse_since("2024-05-01") == datetime(2024, 5, 1).timestamp()
    for bad in ("yesterday", "7 years", ""):
        with pytest.raises(ValueError):
            parse_since(bad)


def test_an_item_is_prefilled_with_the_guess():
    entities = [{"entity": "order_id", "value": "48213", "start": 15, "end": 20, "confidence": 0.9},
                {"entity": "product", "value": "shoes", "start": 0, "end": 5, "confidence": 0.4}]  # does not fit
    t = turn("s9", 4, "where is order 48213", parsed=parse(
        "track_order", 0.55, [("track_order", 0.55), ("refund", 0.35), ("greet", 0.1)], entities=entities))
    it = item_from_turn(t)
    assert (it.text, it.intent, it.kind) == ("where is order 48213", "track_order", "example")
    assert [(e.start, e.end, e.entity, e.value) for e in it.entities] == [(15, 20, "order_id", "48213")]
    r = it.review
    assert (r.session_id, r.turn, r.timestamp, r.source) == ("s9", 4, BASE_TIME + 4, "transcript")
    assert r.confidence == pytest.approx(0.55) and r.margin == pytest.approx(0.2)
    assert 0 < r.entropy < 1 and r.predicted_intent == "track_order" and r.model_version == "v7"
    assert r.count == 1 and r.sessions == ["s9"] and r.decision is None


def test_exact_duplicates_merge_with_counts():
    turns = [turn("a", 1, "Where is my order?", parsed=parse("track", 0.3)),
             turn("b", 1, "where  is my ORDER", parsed=parse("track", 0.3)),
             turn("c", 1, "where is my order!!", parsed=parse("refund", 0.2)),
             turn("d", 1, "something else entirely", parsed=parse("track", 0.3)),
             turn("e", 1, "?!", parsed=parse("track", 0.3))]  # nothing left once punctuation goes
    merged = merge_duplicates([item_from_turn(t) for t in turns])
    assert [(m.text, m.review.count) for m in merged] == [("Where is my order?", 3), ("something else entirely", 1)]
    assert merged[0].review.sessions == ["a", "b", "c"]


def test_near_duplicates_merge_within_one_predicted_intent_only():
    long = "hello I ordered a blue jacket last week and it still has not arrived at my house"
    near = long.replace("blue", "red") + " yet"  # 16 of 19 tokens shared: 0.84, below 0.9
    nearer = long + " yet"  # 17 of 18 shared: 0.94
    other_intent = long + " today"
    items = [item_from_turn(turn(s, 1, text, parsed=parse(intent, 0.3))) for s, text, intent in (
        ("a", long, "track"), ("b", nearer, "track"), ("c", near, "track"), ("d", other_intent, "refund"))]
    merged = merge_duplicates(items)
    assert [(m.text, m.review.count) for m in merged] == [(long, 2), (near, 1), (other_intent, 1)]
    assert merged[0].review.sessions == ["a", "b"]
    assert items[0].review.count == 1  # the inputs are not changed


def test_near_duplicate_merging_keeps_thousands_of_distinct_texts_apart(log):
    # 4000 distinct texts of one intent, sharing most words: none is merged into another (prefix filtering
    # keeps this fast; speed is not asserted here)
    items = [item_from_turn(turn(f"s{n}", 1, f"order {n} is late and item {n * 7} is missing",
                                 parsed=parse("track", 0.3))) for n in range(4000)]
    assert len(merge_duplicates(items)) == 4000


def test_random_is_seeded():
    items = [item_from_turn(turn(f"s{n}", 1, f"message number {n}", parsed=parse("x", 0.3))) for n in range(50)]
    first = [i.text for i in choose(items, "random", 10, seed=3)]
    assert first == [i.text for i in choose(items, "random", 10, seed=3)]
    assert first != [i.text for i in choose(items, "random", 10, seed=4)]
    assert len(set(first)) == 10
    assert first != [i.text for i in choose(items, "uncertainty", 10)]


def test_export_review_counts(log):
    dup = turn("s4", 1, "My parcel never came!", parsed=parse("track_order", 0.3), source="retrieve")
    result = export_review([*log, dup], select="low-confidence", limit=2)
    assert (result.read, result.selected, result.candidates, result.merged, result.written) == (14, 4, 4, 1, 2)
    assert result.items[0].text == "my parcel never came" and result.items[0].review.count == 2


def test_export_with_handoff_adds_qa_candidates(log):
    result = export_review(log, select="handoff")
    qa = [i for i in result.items if i.kind == "qa"]
    assert [(i.text, i.answer, i.review.source) for i in qa] == [
        ("I want a human now my card was charged twice", "Sorry about that, I have refunded the second charge.",
         "handoff")]
    assert sorted(i.text for i in result.items if i.kind == "example") == [
        "I want a human now", "my card was charged twice"]


def test_review_file_round_trip_and_strict_reading(tmp_path, log):
    items = [item_from_turn(t) for t in select_turns(log, "all")]
    path = tmp_path / "review.jsonl"
    assert write_review_file(items, path) == len(items)
    again = read_review_file(path)
    assert [i.to_dict() for i in again] == [i.to_dict() for i in items]
    line = json.loads(path.read_text().splitlines()[0])
    assert set(line) == {"text", "intent", "entities", "kind", "review"}
    assert set(line["review"]) == {"id", "session_id", "turn", "timestamp", "source", "confidence", "margin",
                                   "entropy", "predicted_intent", "count", "sessions", "model_version", "decision",
                                   "reviewer", "note"}
    lines = path.read_text().splitlines()
    lines[2] = lines[2][:-1]  # torn JSON on line 3
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"^{path}:3: invalid JSON"):
        read_review_file(path)
    lines[2] = json.dumps({**json.loads(lines[1]), "review": {**json.loads(lines[1])["review"], "count": "2"}})
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"^{path}:3: review 'count' must be int"):
        read_review_file(path)
