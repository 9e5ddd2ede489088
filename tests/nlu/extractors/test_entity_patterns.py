"""The patterns file: regexes and lookup tables as entity extractors, synonyms, and the errors of a bad file."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest

from csbot.errors import DataError
from nlu.extractors import PatternExtractor, load_pattern_files, load_patterns

NOW = datetime(2026, 12, 2, 10, 0)

GOOD = r"""
entities:
  account_type:
    regex: ['\b(savings|checking)\b']
    lookup: [savings, checking, credit card]
  iban:
    regex: ['\b[A-Z]{2}\d{2}[A-Z0-9]{10,30}\b']
  plan:
    lookup: [gold, gold plus, 42]
synonyms:
  credit: [cc, credit card, creditcard]
  "checking": [current account]
"""


def write(tmp_path, text, name="patterns.yml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file(tmp_path):
    patterns = load_patterns(write(tmp_path, GOOD))
    assert patterns.regexes == {"account_type": [r"\b(savings|checking)\b"], "iban": [r"\b[A-Z]{2}\d{2}[A-Z0-9]{10,30}\b"]}
    assert patterns.lookups["plan"] == ["gold", "gold plus", "42"]
    assert patterns.synonym("CC") == "credit" and patterns.synonym("Credit  Card") == "credit"
    assert patterns.synonym("current account") == "checking" and patterns.synonym("credit") is None
    found = PatternExtractor(patterns).extract("Move it from SAVINGS to my credit card, plan Gold Plus, "
                                               "iban nl91abna0417164300", NOW)
    assert [(e.entity, e.value, e.extractor) for e in found] == [
        ("account_type", "SAVINGS", "pattern"), ("account_type", "SAVINGS", "pattern"),
        ("account_type", "credit card", "pattern"), ("plan", "Gold Plus", "pattern"),
        ("iban", "nl91abna0417164300", "pattern")]


def test_lookup_is_whole_word_and_longest_first(tmp_path):
    patterns = load_patterns(write(tmp_path, "entities:\n  plan:\n    lookup: [gold, gold plus]\n"))
    extractor = PatternExtractor(patterns)
    assert [e.value for e in extractor.extract("goldfish and golden, gold plus or gold.", NOW)] == ["gold plus", "gold"]


def test_an_empty_file_and_several_files(tmp_path):
    assert load_patterns(write(tmp_path, "# nothing yet\n")).regexes == {}
    a = write(tmp_path, "entities:\n  plan:\n    lookup: [gold]\nsynonyms:\n  g: [gld]\n", "a.yml")
    b = write(tmp_path, "entities:\n  plan:\n    lookup: [silver, gold]\nsynonyms:\n  g: [gld, gd]\n", "b.yml")
    merged = load_pattern_files([a, b])
    assert merged.lookups == {"plan": ["gold", "silver"]} and merged.synonyms == {"gld": "g", "gd": "g"}
    c = write(tmp_path, "synonyms:\n  other: [gld]\n", "c.yml")
    with pytest.raises(DataError, match="'gld' is a variant of both 'g' and 'other'") as err:
        load_pattern_files([a, c])
    assert err.value.path == c


@pytest.mark.parametrize(("text", "message", "line"), [
    ("entities: [a, b]\n", "entities: must be a mapping", 1),
    ("entitys:\n  a: {lookup: [x]}\n", "entitys: unknown key; expected entities or synonyms", 1),
    ("entities:\n  a:\n    lookup: [x]\n    regexp: ['x']\n", "entities.a.regexp: unknown key", 4),
    ("entities:\n  a:\n    regex: ['ok', '(unclosed']\n", "entities.a.regex[1]: invalid regex '(unclosed'", 3),
    ("entities:\n  a:\n    regex:\n      - ok\n      - '[z-a]'\n", "entities.a.regex[1]: invalid regex", 5),
    ("entities:\n  a:\n    lookup: savings\n", "entities.a.lookup: must be a non-empty list of strings", 3),
    ("entities:\n  a:\n    lookup: []\n", "entities.a.lookup: must be a non-empty list", 3),
    ("entities:\n  a:\n    lookup: [x, {y: 1}]\n", "entities.a.lookup[1]: must be a non-empty string", 3),
    ("entities:\n  a: {}\n", "entities.a: must be a mapping with regex: and/or lookup:", 2),
    ("synonyms:\n  credit: cc\n", "synonyms.credit: must be a non-empty list of strings", 2),
    ("synonyms: [cc]\n", "synonyms: must be a mapping", 1),
    ("synonyms:\n  a: [x]\n  b: [y, X]\n", "'x' is a variant of both 'a' and 'b'", 3),
    ("entities:\n  a:\n    lookup: [x]\n  a:\n    lookup: [y]\n", "duplicate key 'a'", 4),
    ("entities:\n  a: [unclosed\n", "invalid YAML", None),
    ("- just\n- a list\n", "a patterns file is a mapping", 1),
])
def test_a_bad_file_names_the_file_key_and_line(tmp_path, text, message, line):
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("(", r"\(")) as err:
        load_patterns(path)
    assert err.value.path == path
    if line is not None:
        assert err.value.line == line, str(err.value)
    assert str(err.value).startswith(str(path))


def test_a_missing_file(tmp_path):
    with pytest.raises(DataError, match="entity patterns file not found"):
        load_patterns(tmp_path / "nope.yml")


def test_a_backtracking_regex_is_cut_off_by_its_timeout(tmp_path, caplog):
    """``(a|a)+$`` takes 2^n steps on n letters and a stop: the pattern runs with the regex module's timeout,
    so a hostile message finds nothing for it, the pattern is named in the log, and the other patterns still run."""
    path = write(tmp_path, "entities:\n  code:\n    regex: ['(a|a)+$']\n  plan:\n    lookup: [gold]\n")
    extractor = PatternExtractor(load_patterns(path))
    with caplog.at_level(logging.WARNING, logger="nlu.extractors.patterns"):
        found = extractor.extract("gold " + "a" * 60 + "!", NOW)
    assert [(e.entity, e.value) for e in found] == [("plan", "gold")]
    assert "(a|a)+$" in caplog.text and "took over" in caplog.text
    assert [e.value for e in extractor.extract("aaaa", NOW)] == ["aaaa"]  # the pattern still works
    long = "gold " * 20_000  # 100k characters: the lookup of one word is linear
    assert len(extractor.extract(long, NOW)) > 0
