"""``training.qa_data.load_qa``: Q&A files, transcripts and every NLU data format as Q&A records, and its errors."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from csbot.errors import DataError
from training.qa_data import load_qa


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_qa_csv(tmp_path):
    path = write(tmp_path / "faq.csv", "question,answer,intent\nWhere is my order?,See Orders.,track\nDo you ship abroad?,Yes.,\n")
    records = load_qa([path])
    assert [(r.question, r.answer, r.intent) for r in records] == [
        ("Where is my order?", "See Orders.", "track"), ("Do you ship abroad?", "Yes.", None)]


def test_transcripts_jsonl(tmp_path):
    conversation = {"id": "c1", "turns": [{"role": "customer", "text": "Hello"},
                                          {"role": "customer", "text": "Can I return shoes?"},
                                          {"role": "agent", "text": "Within 30 days."}]}
    path = write(tmp_path / "chats.jsonl", json.dumps(conversation) + "\n")
    records = load_qa([str(path)])
    assert [(r.id, r.question, r.answer) for r in records] == [("c1:1", "Can I return shoes?", "Within 30 days.")]


def test_nlu_csv_examples_become_records(tmp_path):
    path = write(tmp_path / "nlu.csv", "text,label\nwhere is my parcel,track\nhello,greet\n")
    records = load_qa([path])
    assert [(r.id, r.question, r.answer, r.intent, r.source) for r in records] == [
        ("nlu.csv:1", "where is my parcel", "track", "track", "nlu.csv"),
        ("nlu.csv:2", "hello", "greet", "greet", "nlu.csv"),
    ]
    # a stray empty label in single-label data is a mistake, named by its line, not a record to skip
    path = write(tmp_path / "nlu.csv", "text,label\nwhere is my parcel,track\nno label here,\n")
    with pytest.raises(DataError, match="no intent") as exc:
        load_qa([path])
    assert str(exc.value).startswith(f"{path}:3:")


def test_multi_label_examples_without_an_intent_are_skipped(tmp_path):
    lines = [{"text": "fares and flights", "intents": ["flight", "fare"]}, {"text": "nothing applies", "intents": []},
             {"text": "to paris", "intent": "flight"}]
    path = write(tmp_path / "nlu.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    assert [(r.id, r.question, r.answer) for r in load_qa([path])] == [
        ("nlu.jsonl:1", "fares and flights", "flight#fare"), ("nlu.jsonl:3", "to paris", "flight")]


def test_rasa_yaml_examples_become_records(tmp_path):
    path = write(tmp_path / "nlu.yml", 'version: "3.1"\nnlu:\n- intent: track\n  examples: |\n'
                 "    - where is [48213](order_id)\n    - status please\n- intent: greet\n  examples: |\n    - hi there\n")
    records = load_qa([path])
    assert [(r.question, r.answer, r.intent) for r in records] == [
        ("where is 48213", "track", "track"), ("status please", "track", "track"), ("hi there", "greet", "greet")]


def test_several_sources_are_concatenated(tmp_path):
    qa = write(tmp_path / "faq.csv", "question,answer\nDo you ship abroad?,Yes.\n")
    nlu = write(tmp_path / "nlu.csv", "text,label\nhello,greet\n")
    assert [r.answer for r in load_qa([qa, nlu])] == ["Yes.", "greet"]


def test_a_format_name_overrides_detection(tmp_path):
    qa = write(tmp_path / "faq.txt", '{"question": "q", "answer": "a"}\n')
    assert [r.answer for r in load_qa([qa], "qa_jsonl")] == ["a"]
    qa_csv = write(tmp_path / "table.csv", "question,answer\nwhat,greet\n")
    with pytest.raises(DataError, match="no text column"):  # read as an NLU table, not as Q&A
        load_qa([qa_csv], "csv")
    records = load_qa([write(tmp_path / "t.csv", "text,intent\nhi,greet\n")], "csv")
    assert [(r.question, r.intent) for r in records] == [("hi", "greet")]


def test_clinc150_validation_split_with_a_selector(datasets_dir):
    records = load_qa([f"{datasets_dir / 'clinc150' / 'data_full_train_val.json'}@val"])
    assert len(records) == 3000
    assert len({r.id for r in records}) == 3000
    assert all(r.answer == r.intent and r.question for r in records)
    counts = Counter(r.intent for r in records)
    assert len(counts) == 150 and set(counts.values()) == {20}
    assert records[0].source == "data_full_train_val.json@val" and records[0].id == "data_full_train_val.json@val:1"


def test_nlupp_json_is_read_as_nlu_data_not_as_transcripts(datasets_dir):
    records = load_qa([datasets_dir / "nlupp" / "banking" / "fold0.json"])
    assert len(records) > 50  # examples without an intent are skipped
    assert all(r.intent and r.answer == r.intent and r.id.startswith("fold0.json:") for r in records)


def test_one_file_name_in_two_folders_gives_distinct_ids(datasets_dir):
    banking, hotels = datasets_dir / "nlupp" / "banking" / "fold0.json", datasets_dir / "nlupp" / "hotels" / "fold0.json"
    records = load_qa([banking, hotels])
    assert len({r.id for r in records}) == len(records)
    assert records[0].id == "fold0.json:1" and records[-1].id.startswith(f"{hotels}:")


def test_errors(tmp_path):
    with pytest.raises(DataError, match="no Q&A data"):
        load_qa([])
    with pytest.raises(DataError, match="no such file") as exc:
        load_qa([tmp_path / "missing.csv"])
    assert exc.value.path == tmp_path / "missing.csv"
    unlabelled = write(tmp_path / "unlabelled.jsonl", '{"text": "unlabelled", "intents": []}\n')
    with pytest.raises(DataError, match="no records"):
        load_qa([unlabelled])
    for name in ("empty.csv", "empty.jsonl"):  # an empty file is an error naming it, not zero records
        empty = write(tmp_path / name, "")
        with pytest.raises(DataError) as exc:
            load_qa([empty])
        assert exc.value.path == empty
    bad = write(tmp_path / "faq.csv", "question,answer\nq1,a1\n,a2\n")
    with pytest.raises(DataError) as exc:
        load_qa([bad])
    assert str(exc.value).startswith(f"{bad}:3:")
