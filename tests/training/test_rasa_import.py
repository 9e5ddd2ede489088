"""Rasa NLU data read whole (training/importers/rasa_yaml.py): a data/nlu/ folder, retrieval and out-of-scope
sub-intents, synonyms and value mappings, regexes and lookups, responses in data files."""

from __future__ import annotations

import pytest
from conftest import REPO

from csbot.errors import DataError
from training.data import load_dataset
from training.importers import detect_format, load_examples
from training.importers.rasa_yaml import base_intent, read_rasa_nlu

NLU_DIR = REPO / "tests" / "fixtures" / "rasa_project" / "data" / "nlu"
DATA_DIR = NLU_DIR.parent


def test_a_data_nlu_folder_is_read_whole():
    assert detect_format(NLU_DIR) == "rasa_yaml" and detect_format(DATA_DIR) == "rasa_yaml"
    examples = load_examples(NLU_DIR)
    intents = {e.intent for e in examples}
    assert {"greet", "transfer_money", "faq", "out_of_scope", "check_balance"} <= intents
    assert not any("/" in i for i in intents)  # faq/ask_fees -> faq, out_of_scope/cooking -> out_of_scope
    assert load_dataset([DATA_DIR]) == examples  # stories, rules and responses files beside them are passed over


def test_synonyms_value_mappings_regexes_lookups_and_responses():
    data = read_rasa_nlu(NLU_DIR)
    assert data.synonyms["savings"] == ["saver", "savings account"]
    assert data.synonyms["checking"] == ["current account"] and data.synonyms["credit"] == ["cc"]
    assert data.regexes == {"amount": [r"\b\d+(?:\.\d{2})?\b"]}
    assert data.lookups == {"account_type": ["savings", "checking", "current account"]}
    assert "faq/ask_fees" in {e.intent for e in data.examples}  # Rasa's names are kept here
    saver = next(e for e in data.examples if "saver" in e.text)
    assert saver.entities[0].value == "saver"  # the span keeps its text; the mapping is a synonym
    patterns = data.patterns()
    assert set(patterns) == {"entities", "synonyms"}
    assert patterns["entities"]["amount"] == {"regex": [r"\b\d+(?:\.\d{2})?\b"]}
    path, line = data.origins[0]
    assert path.parent == NLU_DIR and line > 0


def test_responses_in_an_nlu_file_and_sub_intents(tmp_path):
    path = tmp_path / "nlu.yml"
    path.write_text('nlu:\n- intent: faq/ask_hours\n  examples: |\n    - when do you open\n'
                    '- intent: out_of_scope/weather\n  examples: |\n    - will it rain\n'
                    'responses:\n  utter_faq/ask_hours:\n  - text: From 9 to 5.\n')
    data = read_rasa_nlu(path)
    assert data.responses == {"utter_faq/ask_hours": [{"text": "From 9 to 5."}]}
    assert [e.intent for e in data.training_examples()] == ["faq", "out_of_scope"]
    assert base_intent("faq/ask_hours") == "faq" and base_intent("greet") == "greet"


@pytest.mark.parametrize(("text", "line", "hint"), [
    ("nlu:\n- regex: zip\n  examples: |\n    - ([0-9\n", 4, "not a valid regular expression"),
    ("nlu:\n- synonym: x\n", 2, "has no 'examples'"),
    ("nlu:\n- intent: /x\n  examples: |\n    - a\n", 2, "no name before its '/'"),
])
def test_bad_items_name_the_line(tmp_path, text, line, hint):
    path = tmp_path / "nlu.yml"
    path.write_text(text)
    with pytest.raises(DataError) as info:
        read_rasa_nlu(path)
    assert info.value.line == line and hint in info.value.reason


def test_a_folder_without_nlu_files_is_refused(tmp_path):
    (tmp_path / "rules.yml").write_text("rules: []\n")
    with pytest.raises(DataError, match="no Rasa NLU file"):
        read_rasa_nlu(tmp_path)


def test_a_glob_loads_every_file_it_matches_and_a_glob_matching_nothing_is_named(tmp_path):
    from csbot.errors import DataError
    from training.data import load_dataset

    folder = tmp_path / "data" / "nlu"
    folder.mkdir(parents=True)
    (folder / "a.yml").write_text('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hello\n    - hi\n')
    (folder / "b.yml").write_text('version: "3.1"\nnlu:\n- intent: bye\n  examples: |\n    - goodbye\n')
    (folder / "notes.txt").write_text("not data")
    examples = load_dataset([str(tmp_path / "data" / "**" / "*.yml")])
    assert [(e.text, e.intent) for e in examples] == [("hello", "greet"), ("hi", "greet"), ("goodbye", "bye")]
    with pytest.raises(DataError, match="no file matches"):
        load_dataset([str(tmp_path / "data" / "*.json")])
