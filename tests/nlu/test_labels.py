"""Label maps: ids, BIO tags, the label mode chosen from data, serialisation."""

from __future__ import annotations

import pytest

from nlu.labels import LabelMaps
from nlu.schema import EntitySpan, Example


def test_single_label_maps_are_sorted_and_stable():
    data = [Example("b", "zeta"), Example("a", "alpha", [EntitySpan(0, 1, "x", "a")]), Example("c", "alpha")]
    maps = LabelMaps.from_examples(data)
    assert maps.intents == ["alpha", "zeta"]
    assert maps.tags == ["O", "B-x", "I-x"]
    assert not maps.multi_label and not maps.allows_empty
    assert maps.intent_id("zeta") == 1 and maps.tag_id("I-x") == 2
    assert LabelMaps.from_examples(list(reversed(data))).to_dict() == maps.to_dict()


def test_joined_labels_switch_to_multi_label_mode_with_atomic_labels():
    maps = LabelMaps.from_examples([Example("x", "flight#airfare"), Example("y", "flight")])
    assert maps.multi_label and not maps.allows_empty
    assert maps.intents == ["airfare", "flight"]


def test_examples_without_intent_allow_an_empty_prediction():
    maps = LabelMaps.from_examples([Example("x", ""), Example("y", "pin")])
    assert maps.multi_label and maps.allows_empty
    assert maps.intents == ["pin"]


def test_out_of_scope_label_is_recognised():
    assert LabelMaps.from_examples([Example("x", "oos"), Example("y", "balance")]).oos_label == "oos"
    assert LabelMaps.from_examples([Example("y", "balance")]).oos_label is None


def test_round_trip_and_tampered_tags_rejected():
    maps = LabelMaps(["a", "b"], ["date", "city"], multi_label=True, allows_empty=True, oos_label=None)
    again = LabelMaps.from_dict(maps.to_dict())
    assert again.to_dict() == maps.to_dict()
    bad = maps.to_dict()
    bad["tags"] = ["O", "B-city"]
    with pytest.raises(ValueError, match="tags"):
        LabelMaps.from_dict(bad)
