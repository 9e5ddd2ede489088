"""Retraining end to end with tiny models: merge reviewed examples, train, compare, gate, report."""

from __future__ import annotations

import json

import pytest

from csbot.errors import TrainingError
from nlu.artefact import load_bundle, read_manifest
from nlu.schema import EntitySpan, Example
from training.config import TrainingConfig
from training.data import fingerprint
from training.retrain import RetrainRequest, merge_examples, retrain


def base_data() -> list[Example]:
    out = []
    for n in ("48213", "99120", "10077", "55501"):
        for template in ("where is my order {n}", "track order {n} please"):
            text = template.format(n=n)
            start = text.index(n)
            out.append(Example(text, "track_order", [EntitySpan(start, start + len(n), "order_id", n)]))
    out += [Example(t, "greet") for t in ("hello", "hi there", "good morning", "hey!", "hello bot", "hi")]
    out += [Example(t, "payment") for t in ("can i pay with paypal", "can i pay by card", "is apple pay ok",
                                             "payment options?", "do you take mastercard")]
    out.append(Example("do you accept visa", "greet"))  # a labelling mistake a reviewer corrects
    return out


DEV = [Example("hello there", "greet"), Example("do you take visa", "payment"), Example("hey there", "greet")]
EXTRA = [Example("Do you accept  VISA", "payment"), Example("ship it to paris", "delivery"),
         Example("deliver to london", "delivery"), Example("send it to berlin", "delivery")]


def config(encoder_dir, **overrides) -> TrainingConfig:
    options = {"base_model": str(encoder_dir), "epochs": 2, "min_steps": 0, "batch_size": 6, "seed": 3,
               "device": "cpu", "dev_split": 0.2}
    return TrainingConfig(**{**options, **overrides})


def test_merge_replaces_duplicates_and_appends_new_examples():
    data = [Example("hello", "greet"), Example("bye", "goodbye"), Example("HELLO ", "greet")]
    extra = [Example("Hello", "wrong"), Example("thanks", "thank"), Example("hello", "hello_intent")]
    merged, corrected, added = merge_examples(data, extra)
    assert [(ex.text, ex.intent) for ex in merged] == [("hello", "hello_intent"), ("bye", "goodbye"),
                                                        ("thanks", "thank")]
    assert (corrected, added) == (1, 1)


def test_first_training_passes_with_no_current_model(tmp_path, tiny_encoder_dir):
    result = retrain(RetrainRequest(config=config(tiny_encoder_dir), data=base_data(), dev=DEV,
                                    out_dir=tmp_path / "v1", report_dir=tmp_path / "report"))
    assert result.gate.passed and result.parent_version is None
    assert result.gate.reasons == ["no current model: the candidate is the first model and passes"]
    assert result.comparison.old_version is None and set(result.comparison.sets) == {"dev"}
    assert "parent" not in read_manifest(tmp_path / "v1")
    assert result.metrics["dev.intent_accuracy"] == pytest.approx(
        result.comparison.sets["dev"].new["intent_accuracy"])
    headline = (tmp_path / "report" / "report.md").read_text().splitlines()[2]
    assert headline == "**Promoted: yes.** No current model: the candidate is the first model and passes"


@pytest.fixture(scope="module")
def current_model(tmp_path_factory, tiny_encoder_dir):
    out = tmp_path_factory.mktemp("retrain") / "current"
    retrain(RetrainRequest(config=config(tiny_encoder_dir), data=base_data(), dev=DEV, out_dir=out,
                           report_dir=out.parent / "report-current"))
    return out


def test_warm_retrain_with_a_correction_and_a_new_intent(tmp_path, tiny_encoder_dir, current_model):
    regression = [Example("where is my order 31337", "track_order"), Example("ship it to rome", "delivery")]
    request = RetrainRequest(config=config(tiny_encoder_dir), data=base_data(), extra=EXTRA, dev=DEV,
                             regression=regression, base_model=current_model, out_dir=tmp_path / "v2",
                             report_dir=tmp_path / "report", tolerance=1.0)
    result = retrain(request)

    expected = base_data()
    expected[-1] = EXTRA[0]  # the corrected example takes the mistaken one's place
    expected += EXTRA[1:]
    assert (result.corrected, result.added) == (1, 3)
    manifest = read_manifest(tmp_path / "v2")
    assert manifest["data_fingerprint"] == fingerprint(expected) != fingerprint(base_data() + EXTRA[1:])
    parent = read_manifest(current_model)["version"]
    assert result.parent_version == parent == manifest["parent"]
    assert result.candidate_dir == (tmp_path / "v2").resolve()
    labels = load_bundle(tmp_path / "v2").labels
    assert labels.intents == [*load_bundle(current_model).labels.intents, "delivery"]

    assert result.gate.passed and [v.set for v in result.gate.sets] == ["dev", "regression"]
    regression_primary = result.comparison.sets["regression"].primary_metric
    assert f"regression.{regression_primary}" in result.metrics and "dev.intent_accuracy" in result.metrics
    assert result.comparison.sets["regression"].unknown_to_old == {"delivery": 1}
    assert result.train_seconds > 0

    report = tmp_path / "report"
    for name in ("report.json", "report.md", "f1_delta-dev.png", "reliability-regression.png"):
        assert (report / name).is_file(), name
    text = (report / "report.md").read_text()
    headline = text.splitlines()[2]
    assert headline.startswith("**Promoted: yes.** On every set the candidate's primary metric is at least")
    assert "regression: " in text and "within the tolerance of 1.0000" in text
    assert "count as wrong" in text and "corrected by review | 1" in text
    assert json.loads((report / "report.json").read_text())["gate"]["passed"] is True


def test_from_scratch_is_still_compared_with_the_current_model(tmp_path, tiny_encoder_dir, current_model):
    result = retrain(RetrainRequest(config=config(tiny_encoder_dir), data=base_data(), extra=EXTRA,
                                    base_model=current_model, from_scratch=True, out_dir=tmp_path / "v2",
                                    report_dir=tmp_path / "report", tolerance=1.0))
    assert "parent" not in read_manifest(tmp_path / "v2")           # not warm-started
    assert result.parent_version == read_manifest(current_model)["version"]
    assert result.comparison.old_version == result.parent_version
    dev = result.comparison.sets["dev"]
    assert 0 < dev.n < len(base_data()) + 3 and dev.old is not None  # split off the merged data


def test_nothing_to_compare_on_or_overwriting_the_current_model_is_refused(tmp_path, tiny_encoder_dir,
                                                                           current_model):
    with pytest.raises(TrainingError, match="nothing to compare"):
        retrain(RetrainRequest(config=config(tiny_encoder_dir), data=base_data(), dev=[], base_model=current_model,
                               out_dir=tmp_path / "v2", report_dir=tmp_path / "report"))
    assert not (tmp_path / "v2").exists()
    with pytest.raises(TrainingError, match="over the current model"):
        retrain(RetrainRequest(config=config(tiny_encoder_dir), data=base_data(), dev=DEV, base_model=current_model,
                               out_dir=current_model, report_dir=tmp_path / "report"))
