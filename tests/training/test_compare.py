"""Comparing two models on named sets: deltas, per-intent changes, new confusions, out of scope, the report."""

from __future__ import annotations

import json
import random

import pytest

from nlu.inference import NLUModel
from nlu.labels import LabelMaps
from nlu.schema import EntitySpan, Example, IntentScore, ParseResult
from training.compare import compare_models
from training.compare_report import write_comparison_report
from training.config import TrainingConfig
from training.gate import decide
from training.trainer import Trainer


class ScriptedModel:
    """Stands in for an NLUModel: answers each text with a scripted (intent, out of scope) pair."""

    def __init__(self, intents: list[str], answers: dict[str, tuple[str, bool]], version: str,
                 confidence: float = 0.9) -> None:
        self.labels = LabelMaps(intents, [])
        self.answers, self.version, self.confidence = answers, version, confidence
        self.oos_score, self.oos_threshold, self.neighbours, self.neighbour_threshold = "probability", 0.3, None, 0.0
        self.intent_threshold = None

    def parse(self, texts):
        out = []
        for text in texts:
            intent, oos = self.answers[text]
            score = IntentScore(intent, self.confidence)
            out.append(ParseResult(text, score, [score], [], oos, [score]))
        return out


GOLD = [Example(f"a{i}", "a") for i in range(4)] + [Example(f"b{i}", "b") for i in range(4)] + \
       [Example("c0", "c"), Example("c1", "c")]
OLD_ANSWERS = {**{f"a{i}": ("a", False) for i in range(4)}, **{f"b{i}": ("b", False) for i in range(4)},
               "c0": ("a", False), "c1": ("a", False)}  # the old model cannot say c
NEW_ANSWERS = {"a0": ("a", False), "a1": ("a", False), "a2": ("b", False), "a3": ("b", False),
               "b0": ("b", False), "b1": ("b", False), "b2": ("b", False), "b3": ("a", False),
               "c0": ("c", False), "c1": ("c", False)}


def scripted_pair():
    old = ScriptedModel(["a", "b"], OLD_ANSWERS, "v-old", confidence=0.8)
    new = ScriptedModel(["a", "b", "c"], NEW_ANSWERS, "v-new", confidence=0.95)
    return old, new


def test_deltas_per_intent_and_unknown_intents():
    old, new = scripted_pair()
    comparison = compare_models(old, new, {"dev": GOLD})
    dev = comparison.sets["dev"]
    assert comparison.old_version == "v-old" and comparison.new_version == "v-new"
    assert dev.primary_metric == "intent_accuracy"
    assert dev.value("old", "intent_accuracy") == pytest.approx(0.8)  # c counts as wrong for the old model
    assert dev.value("new", "intent_accuracy") == pytest.approx(0.7)
    assert dev.deltas["intent_accuracy"] == pytest.approx(-0.1)
    rows = {r.intent: r for r in dev.per_intent}
    assert rows["c"].known_by == "new only" and rows["c"].old_f1 == 0.0 and rows["c"].delta == pytest.approx(1.0)
    assert rows["a"].known_by == "both"
    assert rows["a"].old_f1 == pytest.approx(0.8) and rows["a"].new_f1 == pytest.approx(4 / 7)
    assert rows["a"].delta < 0
    assert dev.unknown_to_old == {"c": 2} and dev.unknown_to_new == {}
    assert dev.value("old", "ece") == pytest.approx(0.0) and dev.value("new", "ece") == pytest.approx(0.25)


def test_newly_confused_pairs_are_new_or_grown_by_two():
    old, new = scripted_pair()
    dev = compare_models(old, new, {"dev": GOLD}).sets["dev"]
    pairs = [(c.gold, c.predicted, c.old_count, c.new_count) for c in dev.newly_confused]
    assert pairs == [("a", "b", 0, 2), ("b", "a", 0, 1)]  # (c, a) went away: not listed

    grown = {**OLD_ANSWERS, "a3": ("b", False)}           # old confuses a->b once
    worse = {**grown, "a0": ("b", False), "a1": ("b", False), "b3": ("a", False), "b2": ("a", False)}
    slightly = {**grown, "a0": ("b", False)}
    base = ScriptedModel(["a", "b"], grown, "v1")
    by_three = compare_models(base, ScriptedModel(["a", "b"], worse, "v2"), {"s": GOLD}).sets["s"]
    by_one = compare_models(base, ScriptedModel(["a", "b"], slightly, "v3"), {"s": GOLD}).sets["s"]
    assert [(c.gold, c.predicted, c.old_count, c.new_count) for c in by_three.newly_confused] == [
        ("a", "b", 1, 3), ("b", "a", 0, 2)]
    assert by_one.newly_confused == []                      # 1 -> 2 grew by one only


def test_out_of_scope_set_reports_recall_and_in_scope_accuracy_for_both():
    gold = [Example("a0", "a"), Example("b0", "b"), Example("x0", "oos"), Example("x1", "oos"), Example("x2", "oos")]
    old = ScriptedModel(["a", "b"], {**OLD_ANSWERS, "x0": ("a", True), "x1": ("a", False), "x2": ("b", False)},
                        "v-old")
    new = ScriptedModel(["a", "b"], {**OLD_ANSWERS, "a0": ("a", True), "x0": ("a", True), "x1": ("b", True),
                                     "x2": ("b", True)}, "v-new")
    comparison = compare_models(old, new, {"dev": GOLD, "oos": gold})
    assert comparison.oos_label == "oos"
    result = comparison.sets["oos"]
    assert result.primary_metric == "oos_balanced"
    assert result.value("old", "oos_recall") == pytest.approx(1 / 3)
    assert result.value("new", "oos_recall") == pytest.approx(1.0)
    assert result.value("old", "in_scope_accuracy") == pytest.approx(1.0)
    assert result.value("new", "in_scope_accuracy") == pytest.approx(0.5)
    assert result.deltas["oos_recall"] == pytest.approx(2 / 3)
    assert "oos_recall" not in comparison.sets["dev"].deltas


def test_report_files_and_headline(tmp_path):
    old, new = scripted_pair()
    comparison = compare_models(old, new, {"dev": GOLD})
    gate = decide(comparison, tolerance=0.05)
    paths = write_comparison_report(comparison, gate, tmp_path / "report")
    for name in ("report.json", "report.md", "f1_delta-dev.png", "reliability-dev.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0, name
    assert (tmp_path / "report" / "f1_delta-dev.png").read_bytes()[:4] == b"\x89PNG"
    text = paths["markdown"].read_text()
    headline = text.splitlines()[2]
    assert headline.startswith("**Promoted: no.**")
    assert "dev: intent_accuracy dropped from 0.8000 to 0.7000" in headline and "0.0500" in headline
    assert "count as wrong" in text and "`c` (2)" in text
    assert "| `a` | `b` | 0 | 2 |" in text
    data = json.loads(paths["json"].read_text())
    assert data["passed"] is False
    assert data["comparison"]["sets"]["dev"]["deltas"]["intent_accuracy"] == pytest.approx(-0.1)


def test_empty_set_is_refused():
    old, new = scripted_pair()
    with pytest.raises(ValueError, match="'regression'"):
        compare_models(old, new, {"dev": GOLD, "regression": []})


# -- real models: a trained one against one trained on shuffled labels ------------------------------------


def training_data() -> list[Example]:
    out = []
    for n in ("48213", "99120", "10077", "55501", "31337", "70001"):
        for template in ("where is my order {n}", "track order {n} please"):
            text = template.format(n=n)
            start = text.index(n)
            out.append(Example(text, "track_order", [EntitySpan(start, start + len(n), "order_id", n)]))
    out += [Example(t, "greet") for t in ("hello", "hi there", "good morning", "hey!", "hello bot", "hi")]
    out += [Example(t, "payment") for t in ("can i pay with paypal", "do you accept visa", "can i pay by card",
                                             "is apple pay ok", "payment options?", "do you take mastercard")]
    return out


@pytest.fixture(scope="module")
def good_and_bad(tmp_path_factory, tiny_encoder_dir):
    data = training_data()
    shuffled_intents = [ex.intent for ex in data]
    random.Random(1).shuffle(shuffled_intents)
    shuffled = [Example(ex.text, intent) for ex, intent in zip(data, shuffled_intents)]
    config = TrainingConfig(base_model=str(tiny_encoder_dir), epochs=12, min_steps=0, batch_size=6, seed=3,
                            device="cpu", learning_rate=2e-3, head_learning_rate=2e-2, warmup_ratio=0.0, patience=12)
    root = tmp_path_factory.mktemp("compare")
    Trainer(config, data, data, out_dir=root / "good", show_progress=False).run()
    Trainer(config, shuffled, shuffled, out_dir=root / "bad", show_progress=False).run()
    return NLUModel.load(root / "good", device="cpu"), NLUModel.load(root / "bad", device="cpu")


def test_a_worse_candidate_shows_negative_deltas_and_new_confusions(good_and_bad):
    good, bad = good_and_bad
    data = training_data()
    oos = [Example(t, "oos") for t in ("what is the capital of australia", "sing me a song", "how tall is everest")]
    comparison = compare_models(good, bad, {"dev": data, "with_oos": data + oos})
    dev = comparison.sets["dev"]
    assert dev.value("old", "intent_accuracy") > dev.value("new", "intent_accuracy")
    assert dev.deltas["intent_accuracy"] < 0
    assert dev.newly_confused and all(c.new_count > c.old_count for c in dev.newly_confused)
    assert sum(r.delta for r in dev.per_intent) < 0
    assert comparison.old_version == good.version != comparison.new_version == bad.version
    with_oos = comparison.sets["with_oos"]
    assert with_oos.primary_metric == "oos_balanced"
    for side in ("old", "new"):
        assert with_oos.value(side, "oos_recall") is not None
        assert with_oos.value(side, "in_scope_accuracy") is not None
    reverse = compare_models(bad, good, {"dev": data}).sets["dev"]
    assert reverse.deltas["intent_accuracy"] == pytest.approx(-dev.deltas["intent_accuracy"])
