"""Checks of training.report.write_report."""

from __future__ import annotations

import json
from pathlib import Path

from nlu.schema import Example, IntentScore, ParseResult
from training.evaluation import evaluate_predictions
from training.report import write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _pr(text: str, intent: str, confidence: float, oos: bool = False) -> ParseResult:
    return ParseResult(text, IntentScore(intent, confidence), [IntentScore(intent, confidence)], [], oos)


def _metrics_with_confusions() -> dict:
    gold_labels = ["a", "a", "b", "c", "c", "oos", "oos"]
    pred_labels = ["a", "b", "b", "a", "a", "oos", "a"]
    gold = [Example(f"t{i}", g) for i, g in enumerate(gold_labels)]
    pred = [_pr(f"t{i}", p, 0.3 + 0.1 * i, oos=(p == "oos")) for i, p in enumerate(pred_labels)]
    return evaluate_predictions(gold, pred, oos_label="oos")


def test_write_report_writes_four_files(tmp_path: Path) -> None:
    metrics = _metrics_with_confusions()
    out = tmp_path / "nested" / "report"
    paths = write_report(metrics, out, title="Demo eval")

    assert set(paths) == {"json", "markdown", "confusion", "reliability"}
    assert paths["json"] == out / "report.json"
    assert paths["markdown"] == out / "report.md"
    assert paths["confusion"] == out / "confusion.png"
    assert paths["reliability"] == out / "reliability.png"
    assert sorted(p.name for p in out.iterdir()) == ["confusion.png", "reliability.png", "report.json", "report.md"]

    assert paths["confusion"].read_bytes()[:8] == PNG_MAGIC
    assert paths["reliability"].read_bytes()[:8] == PNG_MAGIC

    raw = paths["json"].read_text(encoding="utf-8")
    assert json.loads(raw) == metrics
    assert raw.index('"calibration"') < raw.index('"n"')  # sorted keys
    assert '\n  "' in raw  # indent 2

    md = paths["markdown"].read_text(encoding="utf-8")
    assert md.startswith("# Demo eval\n")
    assert "Primary metric: **oos_balanced**" in md
    assert f"| intent accuracy | {metrics['intent_accuracy']:.4f} |" in md
    assert "## Out of scope" in md
    assert f"| OOS recall | {metrics['oos_recall']:.4f} |" in md
    assert "| `c` | `a` | 2 |" in md  # the top confused pair
    assert "| `c` | 0.0000 | 0.0000 | 0.0000 | 2 |" in md  # the worst intent
    assert f"{metrics['calibration']['ece']:.4f}" in md
    assert "| slot F1 | n/a |" in md


def test_write_report_without_confusions(tmp_path: Path) -> None:
    gold = [Example("hi", "greet"), Example("bye", "goodbye")]
    pred = [_pr("hi", "greet", 0.9), _pr("bye", "goodbye", 0.8)]
    metrics = evaluate_predictions(gold, pred)
    assert metrics["confused_pairs"] == []

    paths = write_report(metrics, tmp_path)
    assert paths["confusion"].read_bytes()[:8] == PNG_MAGIC
    assert paths["reliability"].read_bytes()[:8] == PNG_MAGIC
    md = paths["markdown"].read_text(encoding="utf-8")
    assert md.startswith("# NLU evaluation\n")
    assert "No intent confusions." in md
    assert "## Out of scope" not in md
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["intent_accuracy"] == 1.0
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_write_report_overwrites_existing_report(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text("stale", encoding="utf-8")
    gold = [Example("hi", "greet")]
    metrics = evaluate_predictions(gold, [_pr("hi", "bye", 0.4)])
    paths = write_report(metrics, tmp_path)
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["intent_accuracy"] == 0.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["confusion.png", "reliability.png", "report.json", "report.md"]
