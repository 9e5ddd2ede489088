"""Importing reviewed files: every line checked before anything is returned, then written atomically."""

from __future__ import annotations

import json

import pytest
from review_helpers import item

from csbot.errors import DataError, EntitySpanError
from nlu.schema import EntitySpan
from retrieval.sources import load_records
from training.data import load_dataset
from training.review import import_reviewed, write_review_file, write_reviewed

LABELS = {"track_order", "refund", "greet"}
ENTITY_TYPES = {"order_id"}


def reviewed_items():
    order = [EntitySpan(15, 20, "order_id", "48213")]
    return [
        item("where is order 48213", "track_order", 0.1, decision="accept", entities=order),
        item("I want my money back", "track_order", 0.05, intent="refund", decision="relabel"),
        item("blah blah", "greet", 0.2, decision="skip"),
        item("what is the meaning of life", "greet", 0.3, decision="out_of_scope"),
        item("do you ship abroad", "", None, decision="accept", kind="qa", answer="Yes, to 40 countries."),
        item("hello there", "greet", 0.4, decision="accept"),
    ]


def write(path, items):
    write_review_file(items, path)
    return path


def test_a_good_file_imports(tmp_path):
    path = write(tmp_path / "r.jsonl", reviewed_items())
    data = import_reviewed([path], LABELS, ENTITY_TYPES)
    assert [(e.text, e.intent, [s.to_dict() for s in e.entities]) for e in data.examples] == [
        ("where is order 48213", "track_order", [{"start": 15, "end": 20, "entity": "order_id", "value": "48213"}]),
        ("I want my money back", "refund", []),
        ("hello there", "greet", []),
    ]
    assert [(e.text, e.intent) for e in data.out_of_scope] == [("what is the meaning of life", "oos")]
    assert [(r.question, r.answer) for r in data.qa] == [("do you ship abroad", "Yes, to 40 countries.")]
    assert data.decisions == {"accept": 3, "relabel": 1, "skip": 1, "out_of_scope": 1}
    assert data.skipped == 1 and data.new_labels == {}
    assert import_reviewed([path], LABELS, ENTITY_TYPES, oos_label="out_of_scope").out_of_scope[0].intent == "out_of_scope"


def test_written_files_read_back_with_the_project_loaders(tmp_path):
    path = write(tmp_path / "r.jsonl", reviewed_items())
    data = import_reviewed([path], LABELS, ENTITY_TYPES)
    out = tmp_path / "out"
    written = write_reviewed(data, out)
    assert written == {"examples.jsonl": 3, "out_of_scope.jsonl": 1, "qa.jsonl": 1}
    assert [e.to_dict() for e in load_dataset([out / "examples.jsonl"])] == [e.to_dict() for e in data.examples]
    assert [e.intent for e in load_dataset([out / "out_of_scope.jsonl"])] == ["oos"]
    records = load_records(out / "qa.jsonl")
    assert [(r.question, r.answer) for r in records] == [("do you ship abroad", "Yes, to 40 countries.")]
    summary = json.loads((out / "decisions.json").read_text())
    assert summary["decisions"] == {"accept": 3, "out_of_scope": 1, "relabel": 1, "skip": 1}
    assert summary["files"] == [str(path)] and summary["written"] == written and summary["time"]
    assert sorted(p.name for p in out.iterdir()) == ["decisions.json", "examples.jsonl", "out_of_scope.jsonl",
                                                      "qa.jsonl"]  # no temp files left
    # importing again with nothing out of scope removes the stale file
    only = write(tmp_path / "only.jsonl", reviewed_items()[:1])
    write_reviewed(import_reviewed([only], LABELS, ENTITY_TYPES), out)
    assert sorted(p.name for p in out.iterdir()) == ["decisions.json", "examples.jsonl"]


def _bad_line(kind):
    """One reviewed line (as JSON text) that must be refused, and the reason expected."""
    good = item("where is order 48213", "track_order", 0.1, decision="accept")
    data = good.to_dict()
    if kind == "unknown decision":
        data["review"]["decision"] = "maybe"
        return json.dumps(data), "unknown decision 'maybe'"
    if kind == "unknown intent":
        data["intent"], data["review"]["decision"] = "cancel_order", "relabel"
        return json.dumps(data), "unknown intent 'cancel_order'"
    if kind == "span mismatch":
        data["entities"] = [{"start": 14, "end": 20, "entity": "order_id", "value": "48213"}]
        return json.dumps(data), "selects ' 48213', not its value '48213'"
    if kind == "span out of range":
        data["entities"] = [{"start": 15, "end": 99, "entity": "order_id", "value": "48213"}]
        return json.dumps(data), "lies outside the text"
    if kind == "overlapping spans":
        data["entities"] = [{"start": 15, "end": 20, "entity": "order_id", "value": "48213"},
                            {"start": 17, "end": 20, "entity": "order_id", "value": "213"}]
        return json.dumps(data), "overlap"
    if kind == "bad JSON":
        return json.dumps(data)[:-2], "invalid JSON"
    if kind == "accept with another intent":
        data["intent"] = "refund"
        return json.dumps(data), "accept keeps the predicted intent 'track_order'"
    if kind == "relabel to the same intent":
        data["review"]["decision"] = "relabel"
        return json.dumps(data), "relabel needs an intent other than the predicted 'track_order'"
    if kind == "no intent":
        data["intent"], data["review"]["predicted_intent"] = "", ""
        return json.dumps(data), "needs an intent"
    if kind == "qa without answer":
        qa = item("do you ship abroad", "", None, decision="accept", kind="qa", answer="  ")
        return json.dumps(qa.to_dict()), "needs a non-empty 'answer'"
    if kind == "no decision":
        data["review"]["decision"] = None
        return json.dumps(data), "no decision yet"
    if kind == "unknown entity type":
        data["entities"] = [{"start": 15, "end": 20, "entity": "ticket", "value": "48213"}]
        return json.dumps(data), "unknown entity type 'ticket'"
    raise AssertionError(kind)


BAD_KINDS = ["unknown decision", "unknown intent", "span mismatch", "span out of range", "overlapping spans",
             "bad JSON", "accept with another intent", "relabel to the same intent", "no intent", "qa without answer",
             "no decision", "unknown entity type"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_each_bad_line_names_file_and_line(tmp_path, kind):
    good = tmp_path / "a.jsonl"
    write(good, reviewed_items()[1:])  # fine, and nothing in it is the bad line's text
    bad = tmp_path / "b.jsonl"
    line, reason = _bad_line(kind)
    fine = item("hello there friend", "greet", 0.1, decision="accept").to_json()
    bad.write_text("\n".join([fine, fine.replace("hello there friend", "hello again friend"), line]) + "\n")
    with pytest.raises(DataError) as caught:
        import_reviewed([good, bad], LABELS, ENTITY_TYPES)
    assert str(caught.value).startswith(f"{bad}:3: ")
    assert reason in str(caught.value)
    assert caught.value.path == bad and caught.value.line == 3
    if kind.startswith(("span", "overlap")):
        assert isinstance(caught.value, EntitySpanError)


def test_allow_new_labels_lists_them(tmp_path):
    items = [item("cancel my order 48213 please", "track_order", 0.1, intent="cancel_order", decision="relabel",
                  entities=[EntitySpan(16, 21, "ticket", "48213")]),
             item("upgrade me", "refund", 0.1, intent="upgrade#refund", decision="relabel")]
    path = write(tmp_path / "r.jsonl", items)
    with pytest.raises(DataError, match="unknown intent 'cancel_order'"):
        import_reviewed([path], LABELS, ENTITY_TYPES)
    data = import_reviewed([path], LABELS, ENTITY_TYPES, allow_new_labels=True)
    assert data.new_labels == {"intents": ["cancel_order", "upgrade"], "entity_types": ["ticket"]}
    assert [e.intent for e in data.examples] == ["cancel_order", "upgrade#refund"]


def test_unreviewed_lines_are_refused_unless_allowed(tmp_path):
    items = reviewed_items()[:1] + [item("not looked at yet", "greet", 0.2)]
    path = write(tmp_path / "r.jsonl", items)
    with pytest.raises(DataError, match=":2: no decision yet"):
        import_reviewed([path], LABELS, ENTITY_TYPES)
    data = import_reviewed([path], LABELS, ENTITY_TYPES, allow_unreviewed=True)
    assert len(data.examples) == 1 and data.skipped == 1 and data.decisions["unreviewed"] == 1


def test_the_same_item_in_two_files(tmp_path):
    first = write(tmp_path / "a.jsonl", reviewed_items()[:1])
    same = write(tmp_path / "b.jsonl", reviewed_items()[:1])
    data = import_reviewed([first, same], LABELS, ENTITY_TYPES)
    assert len(data.examples) == 1 and data.decisions == {"accept": 1}
    differs = write(tmp_path / "c.jsonl", [item("where is order 48213", "track_order", 0.1, decision="skip")])
    with pytest.raises(DataError, match=rf"{differs}:1: .* reviewed differently at {first}:1"):
        import_reviewed([first, differs], LABELS, ENTITY_TYPES)
