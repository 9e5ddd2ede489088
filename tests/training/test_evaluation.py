"""Hand-computed checks of training.evaluation."""

from __future__ import annotations

import json

import pytest

from nlu.schema import EntitySpan, Example, IntentScore, ParsedEntity, ParseResult
from training.evaluation import evaluate_predictions, word_bio_tags


def ex(text: str, intent: str, spans: list[tuple[int, int, str]] = ()) -> Example:
    return Example(text, intent, [EntitySpan(s, e, lab, text[s:e]) for s, e, lab in spans])


def pr(
    text: str,
    intent: str,
    confidence: float = 0.9,
    spans: list[tuple[int, int, str]] = (),
    intents: list[str] | None = None,
    oos: bool = False,
) -> ParseResult:
    return ParseResult(
        text=text,
        intent=IntentScore(intent, confidence),
        intent_ranking=[IntentScore(intent, confidence)],
        entities=[ParsedEntity(lab, text[s:e], s, e, 0.9) for s, e, lab in spans],
        out_of_scope=oos,
        intents=[IntentScore(name, confidence) for name in intents or []],
    )


# ---------------------------------------------------------------- word_bio_tags


def test_word_bio_tags_multiword_span() -> None:
    assert word_bio_tags("fly to new york", [(7, 15, "city")]) == ["O", "O", "B-city", "I-city"]


def test_word_bio_tags_adjacent_spans_of_one_type_stay_separate() -> None:
    assert word_bio_tags("new york boston", [(0, 8, "city"), (9, 15, "city")]) == ["B-city", "I-city", "B-city"]


def test_word_bio_tags_span_inside_a_word_tags_the_whole_word() -> None:
    assert word_bio_tags("pay $20 now", [(5, 7, "amount")]) == ["O", "B-amount", "O"]
    # trailing punctuation inside the same word gives the same tags
    assert word_bio_tags("to paris, now", [(3, 8, "city")]) == word_bio_tags("to paris, now", [(3, 9, "city")])


def test_word_bio_tags_no_words() -> None:
    assert word_bio_tags("   ", []) == []
    assert word_bio_tags("a b", []) == ["O", "O"]


# ---------------------------------------------------------------- intents


def test_single_label_metrics() -> None:
    texts = ["t1", "t2", "t3", "t4", "t5"]
    gold = [ex(t, g) for t, g in zip(texts, ["a", "a", "b", "c", "c"])]
    pred = [pr(t, p) for t, p in zip(texts, ["a", "b", "b", "a", "a"])]
    m = evaluate_predictions(gold, pred)

    assert m["n"] == 5
    assert m["multi_label"] is False
    assert m["intent_accuracy"] == pytest.approx(2 / 5)
    # a: tp1 fp2 fn1 -> P 1/3 R 1/2 F 0.4; b: tp1 fp1 -> P 1/2 R 1 F 2/3; c: F 0
    assert m["per_intent"]["a"] == pytest.approx({"precision": 1 / 3, "recall": 0.5, "f1": 0.4, "support": 2})
    assert m["per_intent"]["b"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert m["per_intent"]["c"] == pytest.approx({"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2})
    assert m["intent_macro_f1"] == pytest.approx((0.4 + 2 / 3 + 0.0) / 3)
    assert m["confused_pairs"] == [["c", "a", 2], ["a", "b", 1]]
    assert m["exact_match"] == pytest.approx(2 / 5)
    assert m["primary_metric"] == "intent_accuracy"
    assert "n_oos" not in m and "oos_recall" not in m
    assert json.loads(json.dumps(m)) == m


def test_no_entities_gives_null_slot_scores() -> None:
    gold = [ex("hi", "greet"), ex("bye", "goodbye")]
    pred = [pr("hi", "greet"), pr("bye", "greet")]
    m = evaluate_predictions(gold, pred)
    assert m["slot_f1"] is None
    assert m["slot_precision"] is None
    assert m["slot_recall"] is None
    assert m["intent_accuracy"] == pytest.approx(0.5)


def test_multi_label_with_empty_intent() -> None:
    texts = ["t1", "t2", "t3", "t4", "t5"]
    gold = [ex(t, g) for t, g in zip(texts, ["x#y", "x", "", "y", ""])]
    pred = [
        pr("t1", "x#y", intents=["x", "y"]),  # right, from the intents list
        pr("t2", "x"),  # right, from intent.name
        pr("t3", ""),  # right: no intent predicted, none gold
        pr("t4", "x#y", intents=["x", "y"]),  # wrong: one label too many
        pr("t5", "z"),  # wrong: an intent where gold has none
    ]
    m = evaluate_predictions(gold, pred)

    assert m["multi_label"] is True
    assert m["intent_accuracy"] == pytest.approx(3 / 5)
    # x: tp2 fp1 fn0 -> F 0.8; y: tp2 -> F 1.0; z: fp1 -> F 0.0
    assert m["per_intent"]["x"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert m["per_intent"]["y"]["f1"] == pytest.approx(1.0)
    assert m["per_intent"]["z"] == pytest.approx({"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0})
    assert set(m["per_intent"]) == {"x", "y", "z"}
    assert m["intent_macro_f1"] == pytest.approx((0.8 + 1.0 + 0.0) / 3)
    # micro over labels: tp 4, predicted 6, gold 4 -> P 2/3, R 1
    assert m["intent_micro_f1"] == pytest.approx(0.8)
    assert m["primary_metric"] == "intent_micro_f1"
    assert m["confused_pairs"] == [["", "z", 1], ["y", "x#y", 1]]


def test_out_of_scope_metrics() -> None:
    texts = [f"t{i}" for i in range(7)]
    gold_labels = ["a", "a", "b", "oos", "oos", "oos", "b"]
    gold = [ex(t, g) for t, g in zip(texts, gold_labels)]
    pred = [
        pr("t0", "a"),  # in scope, right
        pr("t1", "b"),  # in scope, wrong intent
        pr("t2", "b"),  # in scope, right
        pr("t3", "oos", oos=True),  # OOS caught
        pr("t4", "b", oos=True),  # OOS caught by the flag alone
        pr("t5", "a"),  # OOS missed
        pr("t6", "oos"),  # false OOS: by the label alone
    ]
    m = evaluate_predictions(gold, pred, oos_label="oos")

    assert m["n_oos"] == 3
    assert m["oos_recall"] == pytest.approx(2 / 3)
    assert m["oos_precision"] == pytest.approx(2 / 3)
    assert m["oos_f1"] == pytest.approx(2 / 3)
    assert m["in_scope_accuracy"] == pytest.approx(2 / 4)
    assert m["intent_accuracy"] == pytest.approx(4 / 7)
    assert m["oos_balanced"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert m["primary_metric"] == "oos_balanced"
    assert m["per_intent"]["oos"] == pytest.approx(
        {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3}
    )
    assert m["confused_pairs"] == [["a", "b", 1], ["b", "oos", 1], ["oos", "a", 1]]


def test_oos_label_absent_from_gold_adds_no_oos_metrics() -> None:
    gold = [ex("hi", "greet"), ex("bye", "goodbye")]
    pred = [pr("hi", "greet"), pr("bye", "goodbye")]
    m = evaluate_predictions(gold, pred, oos_label="oos")
    assert "oos_recall" not in m and "in_scope_accuracy" not in m
    assert m["primary_metric"] == "intent_accuracy"
    assert m["intent_accuracy"] == pytest.approx(1.0)


# ---------------------------------------------------------------- slots and exact match


def test_slot_scores_and_exact_match() -> None:
    t1 = "fly from new york to boston"
    t2 = "to paris, now"
    t3 = "hello there"
    gold = [
        ex(t1, "flight", [(9, 17, "from_city"), (21, 27, "to_city")]),
        ex(t2, "flight", [(3, 8, "city")]),
        ex(t3, "greet"),
        ex("hi", "greet"),
        ex("bye", "goodbye"),
    ]
    pred = [
        pr(t1, "flight", spans=[(9, 12, "from_city"), (21, 27, "to_city")]),  # "new" only: one wrong entity
        pr(t2, "flight", spans=[(3, 9, "city")]),  # "paris," : same word, counts right
        pr(t3, "greet", spans=[(0, 5, "name")]),  # a spurious entity
        pr("hi", "goodbye"),  # intent wrong
        pr("bye", "goodbye"),  # all right
    ]
    m = evaluate_predictions(gold, pred)

    # gold entities 3, predicted 4, correct 2 (to_city, city)
    assert m["slot_precision"] == pytest.approx(2 / 4)
    assert m["slot_recall"] == pytest.approx(2 / 3)
    assert m["slot_f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert m["exact_match"] == pytest.approx(2 / 5)
    assert m["intent_accuracy"] == pytest.approx(4 / 5)
    assert m["primary_metric"] == "joint_score"
    assert m["joint_score"] == pytest.approx((4 / 5 + m["slot_f1"]) / 2)


def test_predicted_entities_without_gold_score_zero_not_null() -> None:
    gold = [ex("hello there", "greet")]
    pred = [pr("hello there", "greet", spans=[(0, 5, "name")])]
    m = evaluate_predictions(gold, pred)
    assert m["slot_f1"] == 0.0
    assert m["slot_precision"] == 0.0
    assert m["exact_match"] == 0.0


# ---------------------------------------------------------------- calibration


def test_ece_on_constructed_case() -> None:
    texts = ["t1", "t2", "t3", "t4"]
    gold = [ex(t, "a") for t in texts]
    pred = [
        pr("t1", "a", confidence=0.95),
        pr("t2", "b", confidence=0.95),
        pr("t3", "a", confidence=0.5),
        pr("t4", "a", confidence=0.5),
    ]
    cal = evaluate_predictions(gold, pred)["calibration"]
    # bin 14: conf 0.95, acc 0.5 -> 2/4 * 0.45; bin 7: conf 0.5, acc 1.0 -> 2/4 * 0.5
    assert cal["ece"] == pytest.approx(0.5 * 0.45 + 0.5 * 0.5)
    bins = cal["bins"]
    assert len(bins) == 15
    assert bins[7] == pytest.approx({"lo": 7 / 15, "hi": 8 / 15, "count": 2, "mean_confidence": 0.5, "accuracy": 1.0})
    assert bins[14] == pytest.approx({"lo": 14 / 15, "hi": 1.0, "count": 2, "mean_confidence": 0.95, "accuracy": 0.5})
    assert bins[0]["count"] == 0 and bins[0]["accuracy"] is None
    assert sum(b["count"] for b in bins) == 4


def test_ece_is_zero_when_perfectly_calibrated() -> None:
    gold = [ex("t1", "a"), ex("t2", "b")]
    pred = [pr("t1", "a", confidence=1.0), pr("t2", "b", confidence=1.0)]
    cal = evaluate_predictions(gold, pred)["calibration"]
    assert cal["ece"] == pytest.approx(0.0)
    assert cal["bins"][14]["count"] == 2


# ---------------------------------------------------------------- alignment errors


def test_length_mismatch_raises_value_error() -> None:
    with pytest.raises(ValueError, match="2 gold examples but 1 predictions"):
        evaluate_predictions([ex("a", "x"), ex("b", "y")], [pr("a", "x")])


def test_text_mismatch_raises_value_error() -> None:
    with pytest.raises(ValueError, match="different texts"):
        evaluate_predictions([ex("a", "x")], [pr("b", "x")])


def test_empty_input_raises_value_error() -> None:
    with pytest.raises(ValueError, match="no examples"):
        evaluate_predictions([], [])
