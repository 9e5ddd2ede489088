"""The entity pipeline: overlaps between extractors and with the tagger, synonyms, config, timings."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest

from csbot.errors import ConfigError
from csbot.settings import load_config
from nlu.config import NLUConfig
from nlu.extractors import DEFAULT_BUILTINS, MAX_TEXT_CHARS, EntityExtractor, EntityPipeline, PatternSet
from nlu.extractors.pipeline import _WARM_UP
from nlu.schema import IntentScore, ParsedEntity, ParseResult

NOW = datetime(2026, 12, 2, 10, 0)


def parse(text: str, *entities: ParsedEntity) -> ParseResult:
    return ParseResult(text, IntentScore("transfer", 0.9), [], list(entities), False)


def tagged(text: str, entity: str, value: str) -> ParsedEntity:
    start = text.index(value)
    return ParsedEntity(entity, value, start, start + len(value), 0.8)


def pipeline(**kwargs) -> EntityPipeline:
    return EntityPipeline.from_config(NLUConfig(), [], warm_up=False, **kwargs)


def test_send_50_bucks_to_evan():
    text = "send 50 bucks to evan"
    out = pipeline().augment(parse(text, tagged(text, "person", "evan")), NOW)
    assert [(e.entity, e.value, e.normalized, e.extractor) for e in out.entities] == [
        ("amount", "50 bucks", "50 USD", "amount"), ("person", "evan", None, "model")]
    assert out.text == text and out.intent.name == "transfer"


def test_the_first_listed_extractor_wins_an_overlap_between_extractors():
    text = "return 2 items from order 48213 tomorrow at 3pm, call +1 415 555 2671"
    out = pipeline().augment(parse(text), NOW)
    assert [(e.entity, e.value) for e in out.entities] == [
        ("number", "2"), ("order_code", "48213"), ("date", "tomorrow"), ("time", "3pm"),
        ("phone", "+1 415 555 2671")]  # no number inside the order code, the time or the phone


def test_the_taggers_span_wins_and_takes_the_normalised_value_of_the_same_entity():
    text = "move 50 bucks to savings next monday"
    same = tagged(text, "amount", "50")  # the tagger saw only "50"
    other = tagged(text, "when", "next monday")
    original = parse(text, same, other)
    out = pipeline().augment(original, NOW)
    assert [(e.entity, e.value, e.normalized, e.extractor) for e in out.entities] == [
        ("amount", "50", "50 USD", "model"), ("when", "next monday", None, "model")]
    assert original.entities[0].normalized is None  # the parse given is left as it was
    assert out.to_dict()["entities"][1] == {"entity": "when", "value": "next monday", "start": 25, "end": 36,
                                            "confidence": 0.8}  # a model entity's dict is as before


def test_synonyms_apply_to_every_entity():
    patterns = PatternSet(lookups={"account_type": ["savings", "checking", "credit card"]},
                          synonyms={"cc": "credit", "credit card": "credit", "creditcard": "credit", "50 usd": "fifty"})
    from nlu.extractors import PatternExtractor
    from nlu.extractors.amounts import AmountExtractor

    pipe = EntityPipeline([PatternExtractor(patterns), AmountExtractor()], patterns)
    text = "pay my Credit  Card bill of 50 bucks, or the CC one"
    out = pipe.augment(parse(text, tagged(text, "card", "CC")), NOW)
    assert [(e.entity, e.value, e.normalized, e.extractor) for e in out.entities] == [
        ("account_type", "Credit  Card", "credit", "pattern"), ("amount", "50 bucks", "fifty", "amount"),
        ("card", "CC", "credit", "model")]


def test_config_names_dotted_paths_and_unknown_names():
    assert NLUConfig().builtin_entities == list(DEFAULT_BUILTINS) and NLUConfig().entity_patterns == []
    custom = NLUConfig(builtin_entities=["date", "nlu.extractors.amounts:AmountExtractor"])
    pipe = EntityPipeline.from_config(custom, [], warm_up=False)
    assert [x.name for x in pipe.extractors] == ["date", "amount"]
    assert EntityPipeline.from_config(NLUConfig(builtin_entities=[]), [], warm_up=False).extractors == []
    with pytest.raises(ValueError, match="unknown extractor 'dates'"):
        NLUConfig(builtin_entities=["dates"])
    with pytest.raises(ValueError, match="listed twice"):
        NLUConfig(builtin_entities=["date", "date"])
    with pytest.raises(ConfigError, match="not a subclass"):
        EntityPipeline.from_config(NLUConfig(builtin_entities=["nlu.schema:ParseResult"]), [], warm_up=False)


def test_patterns_paths_resolve_against_the_config_file(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "patterns.yml").write_text("entities:\n  colour:\n    lookup: [red, dark blue]\n")
    (tmp_path / "config.yml").write_text("nlu:\n  entity_patterns: [data/patterns.yml]\n  builtin_entities: [number]\n")
    config = load_config(tmp_path / "config.yml")
    assert config.paths.entity_patterns == [tmp_path / "data" / "patterns.yml"]
    pipe = EntityPipeline.from_config(config.nlu, config.paths.entity_patterns)
    out = pipe.augment(parse("2 dark blue shirts"), NOW)
    assert [(e.entity, e.value) for e in out.entities] == [("number", "2"), ("colour", "dark blue")]
    assert load_config().paths.entity_patterns == []


def test_timings_are_recorded_per_extractor():
    pipe = EntityPipeline.from_config(NLUConfig(), [])  # warmed up, then the timings are reset
    assert all(t["calls"] == 0 for t in pipe.timings().values())
    pipe.augment(parse(_WARM_UP), NOW)
    pipe.augment(parse("hello"), NOW)
    timings = pipe.timings()
    assert list(timings) == list(DEFAULT_BUILTINS)
    assert all(t["calls"] == 2 and t["mean_us"] > 0 and t["max_us"] >= t["mean_us"] for t in timings.values())


class Broken(EntityExtractor):
    name = "broken"

    def extract(self, text, now):
        raise RuntimeError("a bug")


def test_a_failing_extractor_is_logged_and_the_turn_goes_on(caplog):
    from nlu.extractors.numbers import NumberExtractor

    pipe = EntityPipeline([Broken(), NumberExtractor()])
    with caplog.at_level(logging.ERROR, logger="nlu.extractors.pipeline"):
        out = pipe.augment(parse("3 please"), NOW)
    assert [e.value for e in out.entities] == ["3"] and "broken" in caplog.text


def test_a_long_message_is_searched_only_at_its_start():
    text = "transfer $5 " + "x" * 100_000 + " and $7"
    out = pipeline().augment(parse(text), NOW)
    assert [e.normalized for e in out.entities] == ["5 USD"]
    assert all(e.end <= MAX_TEXT_CHARS for e in out.entities)
