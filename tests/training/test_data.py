"""Tests for training.data: specs with selectors, load_dataset, stratified_split, fingerprint, write_jsonl."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from csbot.errors import DataError, EntitySpanError, TrainingError, UnknownFormatError
from nlu.schema import EntitySpan, Example
from training.data import (
    DataSpec,
    fingerprint,
    load_dataset,
    stratified_split,
    write_jsonl,
)
from training.importers import load_examples


def write(folder: Path, name: str, content: str) -> Path:
    path = folder / name
    path.write_text(content, encoding="utf-8")
    return path


CLINC = {
    "train": [["t1", "a"], ["t2", "b"]],
    "val": [["v1", "a"]],
    "oos_train": [["o1", "oos"]],
    "oos_val": [["o2", "oos"]],
}


# --- DataSpec --------------------------------------------------------------------------------------


def test_dataspec_parses_path_and_selector():
    assert DataSpec.parse("data/clinc.json@val,oos_val") == DataSpec(Path("data/clinc.json"), "val,oos_val")
    assert DataSpec.parse("data/train.jsonl") == DataSpec(Path("data/train.jsonl"), None)
    assert DataSpec.parse("a@b/c.json@train") == DataSpec(Path("a@b/c.json"), "train")
    assert DataSpec.parse(Path("x@y.json")) == DataSpec(Path("x@y.json"), None)
    assert str(DataSpec.parse("nlupp/banking@0-7")) == "nlupp/banking@0-7"


def test_dataspec_keeps_an_existing_path_with_at_whole(tmp_path):
    path = write(tmp_path, "me@corp.jsonl", '{"text": "hi", "intent": "greet"}\n')
    assert DataSpec.parse(str(path)) == DataSpec(path, None)
    assert load_dataset([str(path)]) == [Example("hi", "greet")]


@pytest.mark.parametrize("spec", ["", "@train", "data.json@", "data.json@  "])
def test_dataspec_rejects_malformed_specs(spec):
    with pytest.raises(DataError) as info:
        DataSpec.parse(spec)
    assert "spec" in str(info.value) or "selector" in str(info.value)


# --- load_dataset ----------------------------------------------------------------------------------


def test_load_dataset_concatenates_specs_in_order(tmp_path):
    clinc = write(tmp_path, "clinc.json", json.dumps(CLINC))
    jsonl = write(tmp_path, "extra.jsonl", '{"text": "Grüß Gott 👋", "intent": "greet"}\n')
    examples = load_dataset([f"{clinc}@val,oos_val", jsonl, str(clinc)])
    assert [(e.text, e.intent) for e in examples] == [
        ("v1", "a"),
        ("o2", "oos"),
        ("Grüß Gott 👋", "greet"),
        ("t1", "a"),
        ("t2", "b"),
        ("o1", "oos"),
    ]


def test_load_dataset_passes_format_and_columns(tmp_path):
    path = write(tmp_path, "faq.txt", "question,topic\nwhere is my parcel,delivery\n")
    assert load_dataset([path], format="csv", text_column="question", label_column="topic") == [
        Example("where is my parcel", "delivery")
    ]
    with pytest.raises(UnknownFormatError):
        load_dataset([path])
    with pytest.raises(UnknownFormatError):
        load_dataset([path], format="tsv")


def test_load_dataset_rejects_an_empty_list_and_a_selector_for_plain_files(tmp_path):
    with pytest.raises(DataError):
        load_dataset([])
    path = write(tmp_path, "a.jsonl", '{"text": "hi", "intent": "greet"}\n')
    with pytest.raises(DataError) as info:
        load_dataset([f"{path}@train"])
    assert "a.jsonl" in str(info.value) and "selector" in str(info.value)


def test_load_dataset_unknown_split_names_the_file(tmp_path):
    clinc = write(tmp_path, "clinc.json", json.dumps(CLINC))
    with pytest.raises(DataError) as info:
        load_dataset([f"{clinc}@dev"])
    assert "clinc.json" in str(info.value) and "'dev'" in str(info.value) and "oos_val" in str(info.value)


# --- stratified_split ------------------------------------------------------------------------------


def dataset() -> list[Example]:
    examples = []
    for intent, count in (("a", 50), ("b", 20), ("c", 7), ("d", 2), ("e", 1), ("", 10)):
        examples += [Example(f"{intent} {i}", intent) for i in range(count)]
    return examples


def test_stratified_split_keeps_proportions_and_order():
    examples = dataset()
    train, held = stratified_split(examples, 0.2, seed=13)
    assert len(train) + len(held) == len(examples) == 90
    assert len(held) == 18
    assert sorted(e.text for e in train + held) == sorted(e.text for e in examples)
    counts = Counter(e.intent for e in held)
    assert counts["a"] == 10 and counts["b"] == 4 and counts[""] == 2
    assert counts["e"] == 0
    position = {e.text: i for i, e in enumerate(examples)}
    assert [position[e.text] for e in train] == sorted(position[e.text] for e in train)
    assert [position[e.text] for e in held] == sorted(position[e.text] for e in held)


def test_stratified_split_every_class_with_two_keeps_one_in_train():
    examples = dataset()
    for seed in range(5):
        train, _ = stratified_split(examples, 0.9, seed=seed)
        assert {e.intent for e in train} == {"a", "b", "c", "d", "e", ""}
        assert Counter(e.intent for e in train)["d"] == 1


def test_stratified_split_is_deterministic_for_a_seed():
    examples = dataset()
    first = stratified_split(examples, 0.3, seed=7)
    assert stratified_split(examples, 0.3, seed=7) == first
    assert stratified_split(examples, 0.3, seed=8)[1] != first[1]


@pytest.mark.parametrize("fraction", [0, 0.0, 1, 1.0, -0.1, 1.5, float("nan"), "0.2", True])
def test_stratified_split_rejects_fractions_outside_the_open_interval(fraction):
    with pytest.raises(TrainingError) as info:
        stratified_split(dataset(), fraction, seed=0)
    assert str(fraction) in str(info.value) and "between 0 and 1" in str(info.value)


def test_stratified_split_rejects_no_examples():
    with pytest.raises(TrainingError):
        stratified_split([], 0.1, seed=0)


# --- fingerprint -----------------------------------------------------------------------------------


def test_fingerprint_is_order_sensitive_and_content_sensitive():
    one = Example("café ☕ please", "order", [EntitySpan(0, 4, "drink", "café")])
    two = Example("hello", "greet")
    base = fingerprint([one, two])
    assert len(base) == 64 and int(base, 16) >= 0
    assert fingerprint([one, two]) == base
    assert fingerprint([Example("café ☕ please", "order", [EntitySpan(0, 4, "drink", "café")]), two]) == base
    assert fingerprint([two, one]) != base
    assert fingerprint([one, Example("hello", "greet2")]) != base
    assert fingerprint([one]) != base
    assert fingerprint([]) == hashlib.sha256(b"").hexdigest()


# --- write_jsonl -----------------------------------------------------------------------------------


def test_write_jsonl_round_trips_and_matches_the_fingerprint(tmp_path):
    text = "Zoë 😊 flies to Zürich"
    examples = [Example(text, "fly#book", [EntitySpan(15, 21, "city", "Zürich")]), Example("nothing", "")]
    path = tmp_path / "out" / "data.jsonl"
    assert write_jsonl(examples, path) == 2
    assert load_examples(path) == examples
    assert hashlib.sha256(path.read_bytes()).hexdigest() == fingerprint(examples)
    assert "Zürich" in path.read_text(encoding="utf-8")
    assert sorted(p.name for p in path.parent.iterdir()) == ["data.jsonl"]


class Exploding(Example):
    """An example whose serialisation fails, to break a write midway."""

    def to_dict(self):
        raise RuntimeError("boom")


def test_write_jsonl_failure_leaves_the_previous_file_and_no_temp(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("previous content\n", encoding="utf-8")
    examples = [Example(f"line {i}", "x") for i in range(1000)] + [Exploding("bad", "x")]
    with pytest.raises(RuntimeError, match="boom"):
        write_jsonl(examples, path)
    assert path.read_text(encoding="utf-8") == "previous content\n"
    assert [p.name for p in tmp_path.iterdir()] == ["data.jsonl"]


def test_write_jsonl_rejects_bad_spans_without_touching_the_target(tmp_path):
    path = tmp_path / "data.jsonl"
    examples = [Example("hello", "greet"), Example("to rome", "fly", [EntitySpan(3, 7, "city", "paris")])]
    with pytest.raises(EntitySpanError) as info:
        write_jsonl(examples, path)
    assert "example 1" in str(info.value) and "data.jsonl" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_write_jsonl_output_with_line_separators_in_text_reads_back(tmp_path):
    """csbot reads its own output: U+2028, U+2029 and U+0085 are written raw and are not line breaks."""
    examples = [Example(f"one{sep}two", "a") for sep in ("\u2028", "\u2029", "\u0085", "\x0c")]
    examples.append(Example("tab\tand\r\nnewline", "b"))
    path = tmp_path / "data.jsonl"
    assert write_jsonl(examples, path) == 5
    assert "\u2028" in path.read_text(encoding="utf-8")
    assert load_examples(path) == examples
    assert load_dataset([path]) == examples


def test_load_dataset_refuses_an_empty_source_by_name(tmp_path):
    good = write(tmp_path, "good.jsonl", '{"text": "hi", "intent": "greet"}\n')
    empty = write(tmp_path, "empty.jsonl", "\n")
    with pytest.raises(DataError) as info:
        load_dataset([good, empty])
    assert info.value.path == empty and "no examples" in str(info.value)


def test_examples_without_intent_are_written_so_that_they_read_back(tmp_path):
    """Multi-label data whose examples have one intent or none (NLU++) stays multi-label through JSONL."""
    examples = [Example("thanks", ""), Example("block my card", "block")]
    path = tmp_path / "data.jsonl"
    write_jsonl(examples, path)
    assert json.loads(path.read_text(encoding="utf-8").splitlines()[0]) == {
        "entities": [], "intent": "", "intents": [], "text": "thanks"}
    assert load_examples(path) == examples
    assert hashlib.sha256(path.read_bytes()).hexdigest() == fingerprint(examples)
