"""Character-offset alignment on awkward text: gold spans -> piece tags -> decoded spans, exactly."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nlu.alignment import IGNORE_INDEX, best_tag_path, decode_entities, piece_tag_ids, word_tags, words_of
from nlu.labels import LabelMaps
from nlu.schema import EntitySpan, Example


def span(text: str, value: str, entity: str, occurrence: int = 0) -> EntitySpan:
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(value, start + 1)
    return EntitySpan(start, start + len(value), entity, value)


AWKWARD = [
    Example("where's my order #48213?!", "track", [span("where's my order #48213?!", "48213", "order_id")]),
    Example("Café Zoë on Überstraße 5", "visit",
            [span("Café Zoë on Überstraße 5", "Café Zoë", "place"), span("Café Zoë on Überstraße 5", "Überstraße 5", "street")]),
    Example("🎉🎉 order 123 arrived 🙂 thanks", "thanks", [span("🎉🎉 order 123 arrived 🙂 thanks", "123", "order_id")]),
    Example("from 5 to 5", "range", [span("from 5 to 5", "5", "low"), span("from 5 to 5", "5", "high", occurrence=1)]),
    Example("mail john.doe@example.com,asap", "mail", [span("mail john.doe@example.com,asap", "john.doe@example.com", "email")]),
    Example("  leading   and trailing spaces 42  ", "num", [span("  leading   and trailing spaces 42  ", "42", "amount")]),
    Example("ЗАКАЗ 777 не пришёл", "track", [span("ЗАКАЗ 777 не пришёл", "777", "order_id")]),
]


@pytest.fixture(scope="module")
def labels() -> LabelMaps:
    return LabelMaps.from_examples(AWKWARD)


def encode(tokenizer, text):
    enc = tokenizer([text], return_offsets_mapping=True)
    return [tuple(o) for o in enc["offset_mapping"][0]], enc.word_ids(0)


@pytest.mark.parametrize("example", AWKWARD, ids=lambda e: e.text)
def test_gold_spans_survive_the_round_trip(default_tokenizer, labels, example):
    assert example.span_problem() is None
    offsets, word_ids = encode(default_tokenizer, example.text)
    targets = piece_tag_ids(offsets, word_ids, example.entities, labels)
    assert targets[0] == IGNORE_INDEX and targets[-1] == IGNORE_INDEX  # [CLS], [SEP]
    probs = np.zeros((len(targets), labels.num_tags))
    for i, t in enumerate(targets):
        probs[i, t if t != IGNORE_INDEX else 0] = 1.0
    decoded = decode_entities(example.text, offsets, word_ids, probs, labels)
    got = [(e.entity, e.start, e.end, e.value) for e in decoded]
    want = [(e.entity, e.start, e.end, e.value) for e in sorted(example.entities, key=lambda e: e.start)]
    assert got == want
    for entity in decoded:
        assert example.text[entity.start : entity.end] == entity.value
        assert entity.confidence == pytest.approx(1.0)


def test_accented_value_comes_back_as_written_not_as_tokenised(default_tokenizer, labels):
    text = "Café Zoë on Überstraße 5"
    offsets, word_ids = encode(default_tokenizer, text)
    pieces = default_tokenizer.convert_ids_to_tokens(default_tokenizer(text)["input_ids"])
    assert "cafe" in pieces  # the uncased tokenizer strips accents ...
    targets = piece_tag_ids(offsets, word_ids, AWKWARD[1].entities, labels)
    probs = np.eye(labels.num_tags)[[t if t >= 0 else 0 for t in targets]]
    values = [e.value for e in decode_entities(text, offsets, word_ids, probs, labels)]
    assert values == ["Café Zoë", "Überstraße 5"]  # ... but values keep them


def test_continuation_pieces_get_inside_tags(default_tokenizer, labels):
    text = "order 4821399917 now"
    example = Example(text, "track", [span(text, "4821399917", "order_id")])
    offsets, word_ids = encode(default_tokenizer, text)
    targets = piece_tag_ids(offsets, word_ids, example.entities, labels)
    pieces = [t for t, w in zip(targets, word_ids) if w == word_ids[2]]
    assert len(pieces) > 1, "the number should split into several word pieces"
    assert labels.tags[pieces[0]] == "B-order_id"
    assert all(labels.tags[p] == "I-order_id" for p in pieces[1:])


def test_word_tags_mark_first_word_b_and_rest_i():
    words = words_of([(0, 0), (0, 3), (4, 8), (9, 13), (0, 0)], [None, 0, 1, 2, None])
    assert [(w.start, w.end) for w in words] == [(0, 3), (4, 8), (9, 13)]
    tags = word_tags(words, [EntitySpan(4, 13, "city", "york city")])
    assert tags == ["O", "B-city", "I-city"]


def orphan_inside_probs(labels):
    """Three words; the middle one most likely I-amount (0.6), which nothing before it opens."""
    probs = np.zeros((5, labels.num_tags))
    probs[:, 0] = 1.0
    probs[2] = 0
    probs[2, labels.tag_id("I-amount")] = 0.6
    probs[2, labels.tag_id("B-amount")] = 0.3
    probs[2, 0] = 0.1
    return "a 1 b", [(0, 0), (0, 1), (2, 3), (4, 5), (0, 0)], [None, 0, 1, 2, None], probs


def test_unconstrained_decode_starts_new_entity_on_orphan_inside_tag(labels):
    text, offsets, word_ids, probs = orphan_inside_probs(labels)
    decoded = decode_entities(text, offsets, word_ids, probs, labels, constrained=False)
    assert [(e.entity, e.value, e.start, e.end) for e in decoded] == [("amount", "1", 2, 3)]
    assert decoded[0].confidence == pytest.approx(0.6)


def test_constrained_decode_takes_the_best_valid_bio_path(labels):
    text, offsets, word_ids, probs = orphan_inside_probs(labels)
    decoded = decode_entities(text, offsets, word_ids, probs, labels)
    assert [(e.entity, e.value) for e in decoded] == [("amount", "1")]
    assert decoded[0].confidence == pytest.approx(0.3)  # B-amount: the best tag a span may start with
    probs[2, labels.tag_id("B-amount")], probs[2, 0] = 0.1, 0.3
    assert decode_entities(text, offsets, word_ids, probs, labels) == []  # now O beats B-amount


def test_constrained_decode_keeps_a_span_whole(labels):
    # "café zoë bar": word 2 leans I-street (0.55) after B-place; greedy splits it off as a street.
    text, offsets, word_ids = "café zoë bar", [(0, 0), (0, 4), (5, 8), (9, 12), (0, 0)], [None, 0, 1, 2, None]
    probs = np.full((5, labels.num_tags), 1e-6)
    probs[:, 0] = 1.0
    probs[1] = 1e-6
    probs[1, labels.tag_id("B-place")] = 0.9
    probs[2] = 1e-6
    probs[2, labels.tag_id("I-street")], probs[2, labels.tag_id("I-place")], probs[2, 0] = 0.55, 0.40, 0.05
    greedy = decode_entities(text, offsets, word_ids, probs, labels, constrained=False)
    assert [(e.entity, e.value) for e in greedy] == [("place", "café"), ("street", "zoë")]
    whole = decode_entities(text, offsets, word_ids, probs, labels)
    assert [(e.entity, e.value, e.start, e.end) for e in whole] == [("place", "café zoë", 0, 8)]
    assert whole[0].confidence == pytest.approx((0.9 + 0.40) / 2)


def test_best_tag_path_never_opens_with_inside_or_switches_type():
    tags = ["O", "B-a", "I-a", "B-b", "I-b"]
    rng = np.random.default_rng(4)
    for _ in range(200):
        path = best_tag_path(np.log(rng.dirichlet(np.ones(5), size=6)), tags)
        names = [tags[i] for i in path]
        assert not names[0].startswith("I-")
        for prev, cur in itertools.pairwise(names):
            if cur.startswith("I-"):
                assert prev != "O" and prev[2:] == cur[2:], names
    assert decode_entities("", [(0, 0)], [None], np.ones((1, 1)), LabelMaps.from_examples([Example("x", "y")])) == []
