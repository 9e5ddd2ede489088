"""Tests for training.importers: every format's happy path, every error path, detection, the real datasets."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from csbot.errors import ConfigError, DataError, EntitySpanError, UnknownFormatError
from csbot.plugins import IMPORTERS
from nlu.schema import EntitySpan, Example
from training.importers import (
    Importer,
    detect_format,
    get_importer,
    known_formats,
    load_examples,
)


def write(folder: Path, name: str, content: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


def raises_at(error: type[DataError], path: Path, line: int | None, call, *args, **kwargs) -> DataError:
    """Run ``call`` expecting exactly ``error`` whose message names ``path`` (and ``line``, when given)."""
    with pytest.raises(DataError) as info:
        call(*args, **kwargs)
    exc = info.value
    assert type(exc) is error, f"expected {error.__name__}, got {type(exc).__name__}: {exc}"
    message = str(exc)
    assert path.name in message, message
    if line is not None:
        assert exc.line == line, message
        assert f"{path.name}:{line}:" in message, message
    return exc


def spans_ok(examples: list[Example]) -> None:
    for example in examples:
        for entity in example.entities:
            assert example.text[entity.start : entity.end] == entity.value, example


# --- registry and detection ------------------------------------------------------------------------


def test_registry_lists_every_format_and_rejects_unknown_names():
    assert set(known_formats()) == {"jsonl", "rasa_yaml", "rasa_json", "bio", "csv", "clinc150", "nlupp"}
    assert set(known_formats()) == set(IMPORTERS.names())
    assert all(isinstance(get_importer(name), Importer) for name in known_formats())
    assert all(get_importer(name).name == name for name in known_formats())
    assert get_importer("csv").name == "csv"
    with pytest.raises(UnknownFormatError) as info:
        get_importer("parquet")
    assert "parquet" in str(info.value) and "jsonl" in str(info.value) and "clinc150" in str(info.value)


def test_importer_without_its_methods_cannot_be_built():
    class Half(Importer):
        name = "half"

        def sniff(self, path: Path) -> bool:
            return False

    with pytest.raises(TypeError):
        Half()


def test_detection_tries_the_formats_in_registry_order(tmp_path, monkeypatch):
    # the most specific *.json checks first, then the formats told by their names
    assert IMPORTERS.names() == ["rasa_json", "clinc150", "nlupp", "bio", "csv", "jsonl", "rasa_yaml"]
    tried = []
    for name in IMPORTERS.names():
        importer = get_importer(name)
        monkeypatch.setattr(importer, "sniff", lambda path, name=name: tried.append(name) or False)
    with pytest.raises(UnknownFormatError):
        detect_format(write(tmp_path, "a.txt", "x"))
    assert tried == IMPORTERS.names()


class UpperJsonl(Importer):
    """A format of one's own, named by its dotted path."""

    name = "tests.training.test_importers:UpperJsonl"

    def sniff(self, path: Path) -> bool:
        return False

    def load(self, path, selector, options):
        return [Example(line.upper(), "shout") for line in path.read_text().split()]


def test_a_dotted_path_names_an_importer_of_ones_own(tmp_path):
    path = write(tmp_path, "words.txt", "hi there")
    assert load_examples(path, format="tests.training.test_importers:UpperJsonl") == [
        Example("HI", "shout"), Example("THERE", "shout")
    ]
    with pytest.raises(ConfigError, match="--format"):
        get_importer("tests.training.test_importers:Nothing")


def test_unknown_format_name_passed_to_load_examples(tmp_path):
    path = write(tmp_path, "data.jsonl", '{"text": "hi", "intent": "greet"}\n')
    with pytest.raises(UnknownFormatError) as info:
        load_examples(path, format="xml")
    assert "'xml'" in str(info.value) and "rasa_yaml" in str(info.value)


def test_format_name_bypasses_detection(tmp_path):
    path = write(tmp_path, "data.txt", '{"text": "hi", "intent": "greet"}\n')
    with pytest.raises(UnknownFormatError):
        detect_format(path)
    assert load_examples(path, format="jsonl") == [Example("hi", "greet")]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.jsonl", '{"text": "x", "intent": "y"}\n', "jsonl"),
        ("a.yml", "version: '3.1'\nnlu:\n- intent: a\n  examples: |\n    - x\n", "rasa_yaml"),
        ("a.yaml", "nlu: []\n", "rasa_yaml"),
        ("a.csv", "text,label\nx,y\n", "csv"),
        ("a.json", '{"rasa_nlu_data": {"common_examples": []}}', "rasa_json"),
        ("a.json", '{"train": [["x", "y"]], "val": []}', "clinc150"),
        ("a.json", '[{"intents": ["a"], "text": "x"}]', "nlupp"),
    ],
)
def test_detect_format_of_files(tmp_path, name, content, expected):
    assert detect_format(write(tmp_path, name, content)) == expected


def test_detect_format_of_folders(tmp_path):
    for name in ("seq.in", "seq.out", "label"):
        write(tmp_path / "bio", name, "x\n")
    write(tmp_path / "folds", "fold0.json", "[]")
    assert detect_format(tmp_path / "bio") == "bio"
    assert detect_format(tmp_path / "folds") == "nlupp"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("a.json", '{"intents": ["a", "b"]}'),
        ("a.json", "[1, 2, 3]"),
        ("a.yml", "responses:\n  utter_hi: []\n"),
        ("a.txt", "hello"),
    ],
)
def test_detect_format_unknown_names_the_file_and_the_formats(tmp_path, name, content):
    path = write(tmp_path, name, content)
    with pytest.raises(UnknownFormatError) as info:
        detect_format(path)
    message = str(info.value)
    assert str(path) in message
    for known in ("jsonl", "rasa_yaml", "rasa_json", "bio", "csv", "clinc150", "nlupp"):
        assert known in message


def test_detect_format_of_an_empty_folder_and_a_missing_path(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnknownFormatError) as info:
        detect_format(tmp_path / "empty")
    assert "empty" in str(info.value)
    raises_at(DataError, tmp_path / "nothing.jsonl", None, load_examples, tmp_path / "nothing.jsonl")


def test_selector_on_a_format_without_parts_is_rejected(tmp_path):
    path = write(tmp_path, "a.jsonl", '{"text": "x", "intent": "y"}\n')
    exc = raises_at(DataError, path, None, load_examples, path, selector="train")
    assert "selector" in str(exc)


# --- jsonl -----------------------------------------------------------------------------------------


def test_jsonl_happy_path(tmp_path):
    text = "Réserve un café ☕ à Zürich"
    start = text.index("Zürich")
    lines = [
        json.dumps(
            {
                "text": text,
                "intent": "book",
                "entities": [{"start": start, "end": start + 6, "entity": "city", "value": "Zürich"}],
            },
            ensure_ascii=False,
        ),
        "",
        '{"text": "fares and flights", "intents": ["atis_flight", "atis_airfare"]}',
        '{"text": "nothing applies", "intent": ""}',
    ]
    examples = load_examples(write(tmp_path, "data.jsonl", "\n".join(lines) + "\n"))
    assert examples == [
        Example(text, "book", [EntitySpan(start, start + 6, "city", "Zürich")]),
        Example("fares and flights", "atis_flight#atis_airfare"),
        Example("nothing applies", ""),
    ]
    assert examples[1].intents == ("atis_flight", "atis_airfare")


def test_jsonl_invalid_json(tmp_path):
    path = write(tmp_path, "bad.jsonl", '{"text": "a", "intent": "b"}\n\n{"text": "c", \n')
    exc = raises_at(DataError, path, 3, load_examples, path)
    assert "invalid JSON" in str(exc)


def test_jsonl_missing_text(tmp_path):
    path = write(tmp_path, "bad.jsonl", '{"text": "a", "intent": "b"}\n{"intent": "b"}\n')
    exc = raises_at(DataError, path, 2, load_examples, path)
    assert "'text'" in str(exc)


def test_jsonl_entity_missing_keys(tmp_path):
    record = {"text": "to paris", "intent": "fly", "entities": [{"start": 3, "end": 8, "entity": "city"}]}
    path = write(tmp_path, "bad.jsonl", json.dumps(record) + "\n")
    exc = raises_at(DataError, path, 1, load_examples, path)
    assert "'value'" in str(exc)


def test_jsonl_span_not_matching_value(tmp_path):
    record = {
        "text": "to paris",
        "intent": "fly",
        "entities": [{"start": 2, "end": 8, "entity": "city", "value": "paris"}],
    }
    path = write(tmp_path, "bad.jsonl", '{"text": "ok", "intent": "x"}\n' + json.dumps(record) + "\n")
    exc = raises_at(EntitySpanError, path, 2, load_examples, path)
    assert "'paris'" in str(exc)


# --- rasa_yaml -------------------------------------------------------------------------------------

RASA_YAML = """\
version: "3.1"
nlu:
- intent: order_drink
  examples: |
    - I'd like a [café crème ☕](drink) please
    - [two](amount:2) [lattes]{"entity": "drink", "value": "latte", "role": "main"} for [José 🎉](name)

    - just [brackets] and a smile :]
- synonym: latte
  examples: |
    - caffe latte
- lookup: drink
  examples: |
    - espresso
- regex: zip
  examples: |
    - \\d{5}
- intent: greet
  examples:
  - hello there
  - text: "hi [Ana](name)"
responses:
  utter_greet:
  - text: hi
"""


def test_rasa_yaml_happy_path(tmp_path, caplog):
    path = write(tmp_path, "nlu.yml", RASA_YAML)
    with caplog.at_level(logging.INFO, logger="training.importers"):
        examples = load_examples(path)
    first = "I'd like a café crème ☕ please"
    second = "two lattes for José 🎉"
    assert examples == [
        Example(first, "order_drink", [EntitySpan(11, 23, "drink", "café crème ☕")]),
        Example(
            second,
            "order_drink",
            [
                EntitySpan(0, 3, "amount", "two"),
                EntitySpan(4, 10, "drink", "lattes"),
                EntitySpan(15, 21, "name", "José 🎉"),
            ],
        ),
        Example("just [brackets] and a smile :]", "order_drink"),
        Example("hello there", "greet"),
        Example("hi Ana", "greet", [EntitySpan(3, 6, "name", "Ana")]),
    ]
    spans_ok(examples)
    notes = [r.getMessage() for r in caplog.records if "ignoring" in r.getMessage()]
    assert len(notes) == 3
    assert any("synonym 'latte'" in n for n in notes)
    assert any("lookup 'drink'" in n for n in notes)
    assert any("regex 'zip'" in n for n in notes)


def test_rasa_yaml_syntax_error(tmp_path):
    path = write(tmp_path, "nlu.yml", "nlu:\n- intent: a\n  examples: |\n    - x\n- intent: [b\n")
    exc = raises_at(DataError, path, None, load_examples, path, format="rasa_yaml")
    assert "invalid YAML" in str(exc)
    assert exc.line in (5, 6)
    assert f"nlu.yml:{exc.line}:" in str(exc)


def test_rasa_yaml_nlu_missing(tmp_path):
    path = write(tmp_path, "nlu.yml", "version: '3.1'\nresponses: {}\n")
    exc = raises_at(DataError, path, 1, load_examples, path, format="rasa_yaml")
    assert "nlu" in str(exc)


def test_rasa_yaml_nlu_not_a_list(tmp_path):
    path = write(tmp_path, "nlu.yml", "version: '3.1'\nnlu:\n  intent: greet\n")
    exc = raises_at(DataError, path, 3, load_examples, path)
    assert "list" in str(exc)


def test_rasa_yaml_intent_without_examples(tmp_path):
    path = write(
        tmp_path, "nlu.yml", "nlu:\n- intent: a\n  examples: |\n    - x\n- intent: b\n  metadata: {}\n"
    )
    exc = raises_at(DataError, path, 5, load_examples, path)
    assert "'b'" in str(exc) and "examples" in str(exc)


@pytest.mark.parametrize(
    ("example", "hint"),
    [
        ("fly to [paris](", "never closed"),
        ("fly to [paris](city", "never closed"),
        ("fly to [paris", "never closed"),
        ('fly to [paris]{"entity": city}', "not valid JSON"),
        ('fly to [paris]{"value": "Paris"}', 'no "entity"'),
        ("fly to [paris]()", "no entity name"),
    ],
)
def test_rasa_yaml_broken_annotation(tmp_path, example, hint):
    content = f"nlu:\n- intent: fly\n  examples: |\n    - fine\n\n    - {example}\n"
    path = write(tmp_path, "nlu.yml", content)
    exc = raises_at(DataError, path, 6, load_examples, path)
    assert hint in str(exc)


def test_rasa_yaml_example_line_without_dash(tmp_path):
    path = write(tmp_path, "nlu.yml", "nlu:\n- intent: a\n  examples: |\n    - x\n    y\n")
    raises_at(DataError, path, 5, load_examples, path)


# --- rasa_json -------------------------------------------------------------------------------------


def rasa_json(records: list[dict]) -> str:
    return json.dumps(
        {"rasa_nlu_data": {"common_examples": records, "entity_synonyms": []}}, indent=2, ensure_ascii=False
    )


def test_rasa_json_happy_path_keeps_the_span_for_a_synonym(tmp_path, caplog):
    text = "show me chinese restaurants in Köln 🍜"
    records = [
        {
            "text": text,
            "intent": "restaurant_search",
            "entities": [
                {"start": 31, "end": 35, "value": "Köln", "entity": "city"},
                {"start": 8, "end": 15, "value": "chinese_food", "entity": "cuisine"},
            ],
        },
        {"text": "hello", "intent": "greet"},
    ]
    path = write(tmp_path, "nlu.json", rasa_json(records))
    with caplog.at_level(logging.INFO, logger="training.importers"):
        examples = load_examples(path)
    assert examples == [
        Example(
            text,
            "restaurant_search",
            [EntitySpan(8, 15, "cuisine", "chinese"), EntitySpan(31, 35, "city", "Köln")],
        ),
        Example("hello", "greet"),
    ]
    notes = [r.getMessage() for r in caplog.records if "synonym" in r.getMessage()]
    assert len(notes) == 1 and "'chinese'" in notes[0] and "nlu.json" in notes[0]


def _record_line(path: Path, index: int) -> int:
    """The line of the index-th record's opening brace in a file written by json.dumps(indent=2)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    starts = [n for n, line in enumerate(lines, start=1) if line == "      {"]
    return starts[index]


@pytest.mark.parametrize(
    ("entity", "hint"),
    [
        ({"start": 3, "end": 40, "value": "x", "entity": "city"}, "does not fit"),
        ({"start": -1, "end": 2, "value": "x", "entity": "city"}, "does not fit"),
        ({"start": 4, "end": 4, "value": "", "entity": "city"}, "does not fit"),
        ({"start": 5, "end": 3, "value": "x", "entity": "city"}, "does not fit"),
    ],
)
def test_rasa_json_bad_offsets(tmp_path, entity, hint):
    records = [
        {"text": "hello", "intent": "greet"},
        {"text": "fly to rome", "intent": "fly", "entities": [entity]},
    ]
    path = write(tmp_path, "nlu.json", rasa_json(records))
    line = _record_line(path, 1)
    assert line > 5
    exc = raises_at(EntitySpanError, path, line, load_examples, path)
    assert "common_examples[1]" in str(exc) and hint in str(exc)


def test_rasa_json_missing_text(tmp_path):
    records = [{"text": "hello", "intent": "greet"}, {"text": "bye", "intent": "bye"}, {"intent": "fly"}]
    path = write(tmp_path, "nlu.json", rasa_json(records))
    exc = raises_at(DataError, path, _record_line(path, 2), load_examples, path)
    assert "common_examples[2]" in str(exc) and "'text'" in str(exc)


def test_rasa_json_invalid_json(tmp_path):
    path = write(tmp_path, "nlu.json", '{"rasa_nlu_data": {\n  "common_examples": [\n    {"text": }\n  ]}}')
    raises_at(DataError, path, 3, load_examples, path, format="rasa_json")


# --- bio -------------------------------------------------------------------------------------------


def bio(folder: Path, seq_in: str, seq_out: str, label: str) -> Path:
    write(folder, "seq.in", seq_in)
    write(folder, "seq.out", seq_out)
    write(folder, "label", label)
    return folder


def test_bio_happy_path(tmp_path):
    folder = bio(
        tmp_path / "train",
        "play  música de Beyoncé 🎵 now\nfrom new york to san josé\nlist flights\n",
        "O B-genre O B-artist I-artist O\nO B-from I-from O I-to I-to\nO O\n",
        "PlayMusic\natis_flight#atis_airfare\natis_flight\n",
    )
    examples = load_examples(folder)
    assert examples == [
        Example(
            "play música de Beyoncé 🎵 now",
            "PlayMusic",
            [EntitySpan(5, 11, "genre", "música"), EntitySpan(15, 24, "artist", "Beyoncé 🎵")],
        ),
        Example(
            "from new york to san josé",
            "atis_flight#atis_airfare",
            [EntitySpan(5, 13, "from", "new york"), EntitySpan(17, 25, "to", "san josé")],
        ),
        Example("list flights", "atis_flight"),
    ]


def test_bio_lenient_i_tags_start_new_entities(tmp_path):
    folder = bio(tmp_path / "d", "a b c d e f\n", "I-x I-y I-y B-y O I-y\n", "i\n")
    assert load_examples(folder, format="bio")[0].entities == [
        EntitySpan(0, 1, "x", "a"),
        EntitySpan(2, 5, "y", "b c"),
        EntitySpan(6, 7, "y", "d"),
        EntitySpan(10, 11, "y", "f"),
    ]


@pytest.mark.parametrize("missing", ["seq.in", "seq.out", "label"])
def test_bio_missing_file(tmp_path, missing):
    folder = bio(tmp_path / "d", "a\n", "O\n", "i\n")
    (folder / missing).unlink()
    with pytest.raises(DataError) as info:
        load_examples(folder, format="bio")
    assert type(info.value) is DataError
    assert missing in str(info.value) and str(folder) in str(info.value)


def test_bio_line_counts_differ(tmp_path):
    folder = bio(tmp_path / "d", "a b\nc\nd\n", "O O\nO\nO\n", "i\nj\n")
    exc = raises_at(DataError, folder / "label", 3, load_examples, folder)
    assert "seq.in has 3" in str(exc) and "label has 2" in str(exc)


def test_bio_token_tag_count_mismatch(tmp_path):
    folder = bio(tmp_path / "d", "a b\nc d e\n", "O O\nO B-x\n", "i\nj\n")
    exc = raises_at(DataError, folder / "seq.out", 2, load_examples, folder)
    assert "2 tags for 3 tokens" in str(exc)


@pytest.mark.parametrize("tag", ["X-city", "B-", "b-city", "city"])
def test_bio_bad_tag(tmp_path, tag):
    folder = bio(tmp_path / "d", "a b\nc d\n", f"O O\nO {tag}\n", "i\nj\n")
    exc = raises_at(DataError, folder / "seq.out", 2, load_examples, folder)
    assert repr(tag) in str(exc)


# --- csv -------------------------------------------------------------------------------------------


def test_csv_happy_path_with_banking77_columns(tmp_path):
    content = (
        'text,category\nWhere is my card? 💳,card_arrival\n"Pourquoi, ma carte est bloquée?",card_blocked\n\n'
    )
    examples = load_examples(write(tmp_path, "train.csv", content))
    assert examples == [
        Example("Where is my card? 💳", "card_arrival"),
        Example("Pourquoi, ma carte est bloquée?", "card_blocked"),
    ]


def test_csv_column_options(tmp_path):
    path = write(tmp_path, "faq.csv", "id,question,topic\n1,reset my password,account\n")
    assert load_examples(path, text_column="question", label_column="topic") == [
        Example("reset my password", "account")
    ]


def test_csv_missing_column(tmp_path):
    path = write(tmp_path, "faq.csv", "question,label\nreset my password,account\n")
    exc = raises_at(DataError, path, 1, load_examples, path)
    assert "'text'" in str(exc) and "question, label" in str(exc)
    exc = raises_at(DataError, path, 1, load_examples, path, text_column="question", label_column="topic")
    assert "'topic'" in str(exc) and "question, label" in str(exc)


def test_csv_empty_text(tmp_path):
    path = write(tmp_path, "data.csv", 'text,label\nhello,greet\n"a\nb",multi\n  ,greet\n')
    exc = raises_at(DataError, path, 5, load_examples, path)
    assert "empty text" in str(exc)


def test_csv_wrong_number_of_fields(tmp_path):
    path = write(tmp_path, "data.csv", "text,label\nhello,greet\nhello, there,greet\n")
    exc = raises_at(DataError, path, 3, load_examples, path)
    assert "3 fields" in str(exc)
    path = write(tmp_path, "multi.csv", 'text,label\n"two\nlines",greet,extra\nok,greet\n')
    exc = raises_at(DataError, path, 2, load_examples, path)
    assert "3 fields where the header has 2" in str(exc)


# --- clinc150 --------------------------------------------------------------------------------------

CLINC = {
    "train": [["what's the weather in são paulo ☀️", "weather"], ["book a table", "restaurant_reservation"]],
    "val": [["weather tomorrow?", "weather"]],
    "oos_train": [["how tall is a giraffe", "oos"]],
    "oos_val": [["sing me a song", "oos"]],
}


def test_clinc150_default_and_selected_splits(tmp_path):
    path = write(tmp_path, "data_full.json", json.dumps(CLINC, ensure_ascii=False))
    assert load_examples(path) == [
        Example("what's the weather in são paulo ☀️", "weather"),
        Example("book a table", "restaurant_reservation"),
        Example("how tall is a giraffe", "oos"),
    ]
    assert load_examples(path, selector="val, oos_val") == [
        Example("weather tomorrow?", "weather"),
        Example("sing me a song", "oos"),
    ]


def test_clinc150_unknown_split(tmp_path):
    path = write(tmp_path, "data_full.json", json.dumps(CLINC))
    exc = raises_at(DataError, path, None, load_examples, path, selector="val,test")
    assert "'test'" in str(exc) and "train, val, oos_train, oos_val" in str(exc)


def test_clinc150_malformed_pair(tmp_path):
    data = {"train": [["a", "x"]], "val": [["b", "y"], ["c", "y"], ["only text"]], "oos_train": []}
    path = write(tmp_path, "data.json", json.dumps(data, indent=1))
    lines = path.read_text().splitlines()
    line = next(n for n, text in enumerate(lines, start=1) if text.strip() == '"only text"') - 1
    exc = raises_at(DataError, path, line, load_examples, path, selector="val")
    assert "'val'" in str(exc) and "item 2" in str(exc)


# --- nlupp -----------------------------------------------------------------------------------------


def nlupp_item(text: str, intents: list[str] | None, slots: dict[str, str] | None = None) -> dict:
    item: dict = {"text": text}
    if intents is not None:
        item["intents"] = intents
    if slots:
        item["slots"] = {}
        for name, surface in slots.items():
            start = text.index(surface)
            item["slots"][name] = {"text": surface, "span": [start, start + len(surface)], "value": surface}
    return item


def test_nlupp_folder_with_fold_selector(tmp_path):
    folder = tmp_path / "banking"
    for fold in (0, 1, 2, 10):
        items = [
            nlupp_item(
                f"transfer {fold}0 € to Zoë 😊", ["transfer", "new"], {"name": "Zoë", "amount": f"{fold}0 €"}
            ),
            nlupp_item(f"thanks {fold}", None),
        ]
        write(folder, f"fold{fold}.json", json.dumps(items, ensure_ascii=False, indent=2))
    write(folder, "ontology.json", "{}")
    examples = load_examples(folder)
    assert [e.text for e in examples][::2] == [f"transfer {n}0 € to Zoë 😊" for n in (0, 1, 2, 10)]
    assert examples[0] == Example(
        "transfer 00 € to Zoë 😊",
        "transfer#new",
        [EntitySpan(9, 13, "amount", "00 €"), EntitySpan(17, 20, "name", "Zoë")],
    )
    assert examples[1] == Example("thanks 0", "")
    assert [e.text for e in load_examples(folder, selector="1-2")] == [
        "transfer 10 € to Zoë 😊",
        "thanks 1",
        "transfer 20 € to Zoë 😊",
        "thanks 2",
    ]
    assert [e.text for e in load_examples(folder, selector="10,0")][::2] == [
        "transfer 00 € to Zoë 😊",
        "transfer 100 € to Zoë 😊",
    ]
    exc = raises_at(DataError, folder, None, load_examples, folder, selector="3-4")
    assert "0, 1, 2, 10" in str(exc)


def test_nlupp_single_file(tmp_path):
    path = write(
        tmp_path, "hotel.json", json.dumps([nlupp_item("a room for 2 people", ["book"], {"people": "2"})])
    )
    assert load_examples(path) == [
        Example("a room for 2 people", "book", [EntitySpan(11, 12, "people", "2")])
    ]


def test_nlupp_slot_text_not_matching_span(tmp_path):
    items = [nlupp_item("ok", ["affirm"]), nlupp_item("from 9 to 5", ["book"], {"time_from": "9"})]
    items[1]["slots"]["time_from"]["span"] = [5, 7]
    path = write(tmp_path / "folds", "fold3.json", json.dumps(items, indent=2))
    line = path.read_text().splitlines().index("  {", 3) + 1
    exc = raises_at(EntitySpanError, path, line, load_examples, tmp_path / "folds")
    assert "item 1" in str(exc) and "time_from" in str(exc)


def test_nlupp_missing_text(tmp_path):
    path = write(tmp_path, "x.json", '[\n {"text": "a"},\n {"intents": ["b"]}\n]')
    exc = raises_at(DataError, path, 3, load_examples, path, format="nlupp")
    assert "item 1" in str(exc)


# --- the real datasets -----------------------------------------------------------------------------

REAL = [
    ("snips/train", None, "bio", 13084),
    ("snips/dev", None, "bio", 700),
    ("atis/train", None, "bio", 4478),
    ("atis/dev", None, "bio", 500),
    ("banking77/train.csv", None, "csv", 10003),
    ("clinc150/data_full_train_val.json", None, "clinc150", 15100),
    ("clinc150/data_full_train_val.json", "val,oos_val", "clinc150", 3100),
    ("nlupp/banking", None, "nlupp", 1039),
    ("nlupp/hotels", None, "nlupp", 503),
]


@pytest.mark.parametrize(
    ("relative", "selector", "fmt", "count"), REAL, ids=[f"{r}@{s}" for r, s, _, _ in REAL]
)
def test_real_dataset_imports(datasets_dir, relative, selector, fmt, count):
    path = datasets_dir / relative
    assert detect_format(path) == fmt
    examples = load_examples(path, selector=selector)
    assert len(examples) == count
    assert all(isinstance(e, Example) and e.text for e in examples)
    spans_ok(examples)
    if fmt == "bio":
        assert sum(len(e.entities) for e in examples) > len(examples)
    if relative.startswith("atis/"):
        assert any("#" in e.intent for e in examples) or relative == "atis/dev"
    if relative == "nlupp/banking":
        assert 0 < sum(e.intent == "" for e in examples) < len(examples)
        assert any(e.entities for e in examples)
    if fmt == "clinc150":
        assert sum(e.intent == "oos" for e in examples) == 100
        assert len({e.intent for e in examples}) == 151


# --- hardening (issue 12): labels, line splitting, duplicate keys, empty and hostile input ---------


def _bio_with_labels(folder: Path, labels: str) -> Path:
    return bio(folder, "a b\nc d\ne\n", "O O\nO O\nO\n", labels)


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("data.jsonl", '{"text": "hi", "intent": "greet"}\n{"text": "where is it", "intent": ""}\n', 2),
        ("data.jsonl", '{"text": "hi", "intent": "greet"}\n\n{"text": "where is it"}\n', 3),
        ("data.csv", "text,label\nhi,greet\nwhere is it,\nbye,goodbye\n", 3),
        ("nlu.json", json.dumps({"rasa_nlu_data": {"common_examples": [
            {"text": "hi", "intent": "greet"}, {"text": "where is it"}]}}, indent=2), 8),
    ],
)
def test_one_empty_label_in_single_label_data_is_an_error_not_multi_label_mode(tmp_path, name, content, line):
    path = write(tmp_path, name, content)
    exc = raises_at(DataError, path, line, load_examples, path)
    assert "no intent" in str(exc) and "multi-label" in str(exc)


def test_one_empty_label_in_a_bio_folder_names_the_label_file_and_line(tmp_path):
    folder = _bio_with_labels(tmp_path / "d", "greet\n\nbye\n")
    exc = raises_at(DataError, folder / "label", 2, load_examples, folder)
    assert "no intent" in str(exc)


def test_examples_without_intent_are_kept_in_multi_label_data(tmp_path):
    # several intents on one example, or labels given as an 'intents' list, make the data multi-label
    path = write(tmp_path, "a.jsonl", '{"text": "x", "intents": []}\n{"text": "y", "intent": "pin"}\n')
    assert load_examples(path) == [Example("x", ""), Example("y", "pin")]
    folder = _bio_with_labels(tmp_path / "d", "flight#fare\n\nfare\n")
    assert [e.intent for e in load_examples(folder)] == ["flight#fare", "", "fare"]
    path = write(tmp_path, "b.csv", "text,label\nx,a#b\ny,\n")
    assert load_examples(path) == [Example("x", "a#b"), Example("y", "")]


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c", "\x1e"])
def test_jsonl_splits_lines_on_newline_only(tmp_path, separator):
    text = f"first{separator}second"
    lines = [json.dumps({"text": text, "intent": "a"}, ensure_ascii=False), '{"text": "ok", "intent": "b"}']
    path = write(tmp_path, "data.jsonl", "\r\n".join(lines) + "\r\n")
    assert load_examples(path) == [Example(text, "a"), Example("ok", "b")]
    broken = write(tmp_path, "broken.jsonl", lines[0] + "\n" + '{"text": "x", "intent": }\n')
    raises_at(DataError, broken, 2, load_examples, broken)


def test_bio_splits_lines_on_newline_only(tmp_path):
    # U+2028 inside a line separates tokens (it is white space), not lines: the three files stay aligned
    folder = bio(tmp_path / "d", "a\u2028b c\nd\n", "O O B-x\nO\n", "i\nj\n")
    assert load_examples(folder) == [Example("a b c", "i", [EntitySpan(4, 5, "x", "c")]), Example("d", "j")]


def test_utf8_with_a_bom_is_read_and_other_encodings_name_the_line(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + '{"text": "café", "intent": "a"}\n'.encode())
    assert load_examples(path) == [Example("café", "a")]
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"text": "ok", "intent": "a"}\n{"text": "café", "intent": "a"}\n'.encode("latin-1"))
    exc = raises_at(DataError, path, 2, load_examples, path)
    assert "UTF-8" in str(exc)


@pytest.mark.parametrize(
    ("name", "content", "line", "key"),
    [
        ("nlu.yml", "nlu:\n- intent: a\n  examples: |\n    - x\nnlu:\n- intent: b\n  examples: |\n    - y\n", 5, "nlu"),
        ("nlu.yml", "nlu:\n- intent: a\n  intent: b\n  examples: |\n    - x\n", 3, "intent"),
        ("data.jsonl", '{"text": "x", "intent": "a"}\n{"text": "y", "intent": "a", "intent": "b"}\n', 2, "intent"),
        ("nlu.json", '{"rasa_nlu_data": {\n "common_examples": [],\n "common_examples": [\n  {"text": "x", "intent": "a"}]}}',
         3, "common_examples"),
        ("fold0.json", '[\n {"text": "x", "intents": ["a"]},\n {"text": "y",\n  "text": "z"}\n]', 4, "text"),
        ("clinc.json", '{"train": [["x", "a"]],\n "val": [],\n "train": [["y", "b"]]}', 3, "train"),
    ],
)
def test_a_key_given_twice_is_an_error_naming_file_and_line(tmp_path, name, content, line, key):
    path = write(tmp_path, name, content)
    exc = raises_at(DataError, path, line, load_examples, path)
    assert repr(key) in str(exc) and ("twice" in str(exc) or "duplicate" in str(exc))


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.jsonl", ""),
        ("blank.jsonl", "\n  \n\r\n"),
        ("header.csv", "text,label\n"),
        ("empty.yml", ""),
        ("comments.yml", "# nothing yet\n"),
        ("none.yml", "version: '3.1'\nnlu: []\n"),
        ("only-synonyms.yml", "nlu:\n- synonym: latte\n  examples: |\n    - caffe latte\n"),
        ("empty.json", ""),
        ("none.json", '{"rasa_nlu_data": {"common_examples": []}}'),
        ("fold0.json", "[]"),
    ],
)
def test_empty_data_is_an_error_naming_the_file(tmp_path, name, content):
    path = write(tmp_path, name, content)
    fmt = "rasa_yaml" if name.endswith(".yml") else "nlupp" if name in ("empty.json", "fold0.json") else None
    raises_at(DataError, path, None, load_examples, path, format=fmt)


def test_an_empty_bio_folder_is_an_error(tmp_path):
    folder = bio(tmp_path / "d", "", "", "")
    raises_at(DataError, folder, None, load_examples, folder)


HUGE = "1" + "0" * 5000
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("name", "content", "fmt"),
    [
        ("huge.json", f'[{{"text": "x", "intents": ["a"], "n": {HUGE}}}]', "nlupp"),
        ("deep.json", DEEP, "nlupp"),
        ("deep2.json", f'{{"rasa_nlu_data": {{"common_examples": [{{"text": "x", "intent": "a", "e": {"[" * 500}{"]" * 500}}}]}}}}',
         "rasa_json"),
        ("huge.jsonl", f'{{"text": "x", "intent": "a", "n": {HUGE}}}\n', "jsonl"),
        ("deep.jsonl", DEEP + "\n", "jsonl"),
        ("nan.jsonl", '{"text": "x", "intent": "a", "n": NaN}\n', "jsonl"),
        ("surrogate.jsonl", '{"text": "x\\ud800y", "intent": "a"}\n', "jsonl"),
        ("huge.yml", f"nlu:\n- intent: a\n  n: {HUGE}\n  examples: |\n    - x\n", "rasa_yaml"),
        ("deep.yml", f"nlu:\n- intent: a\n  n: {DEEP}\n  examples: |\n    - x\n", "rasa_yaml"),
        ("date.yml", "nlu:\n- intent: a\n  when: 2001-02-30\n  examples: |\n    - x\n", "rasa_yaml"),
        ("surrogate.yml", 'nlu:\n- intent: a\n  examples:\n  - "x\\ud800"\n', "rasa_yaml"),
    ],
)
def test_huge_numbers_deep_nesting_and_surrogates_are_data_errors(tmp_path, name, content, fmt):
    path = write(tmp_path, name, content)
    exc = raises_at(DataError, path, None, load_examples, path, format=fmt)
    assert "invalid" in str(exc)


def test_detection_reads_a_first_line_longer_than_the_head_whole(tmp_path):
    record = {"text": "where is my order " * 5000, "intent": "track"}
    path = write(tmp_path, "data.jsonl", json.dumps(record) + "\n")
    assert path.stat().st_size > 64 * 1024
    assert detect_format(path) == "jsonl" and load_examples(path)[0].intent == "track"
