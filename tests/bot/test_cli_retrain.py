"""``csbot retrain``'s failure paths: a corrupt review file, a worse candidate, a registry that cannot be written;
and its Q&A side (reviewed pairs become a new index version, promoted with the model).

The bot is the one of test_retraining_loop.py (a tiny encoder trained for real, a directory registry).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_retraining_loop import GREET, HELD_BACK, REFUND, TRACK, project  # noqa: F401 - the fixture

from bot.cli import main
from csbot.registry import DirectoryRegistry


def review_line(text: str, intent: str, predicted: str, decision: str, kind: str = "example",
                answer: str | None = None) -> dict:
    item = {"text": text, "intent": intent, "entities": [], "kind": kind,
            "review": {"id": f"id-{abs(hash((text, kind)))}", "predicted_intent": predicted, "decision": decision,
                       "reviewer": "test"}}
    if answer is not None:
        item["answer"] = answer
    return item


def write_lines(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return path


def registry_state(root: Path) -> tuple[str | None, int]:
    registry = DirectoryRegistry(root)
    current = registry.current("model")
    return (current.version if current else None), len(registry.list("model"))


@pytest.mark.slow
def test_a_corrupt_review_file_stops_before_training_and_registers_nothing(project, tmp_path, capsys):  # noqa: F811
    good = review_line("refund please", "refund", "greet", "relabel")
    bad = review_line("money back", "no_such_intent", "greet", "relabel")
    reviewed = write_lines(tmp_path / "reviewed.jsonl", [good, bad])
    before = registry_state(project["registry"])
    code = main(["retrain", "--config", str(project["config"]), "--reviewed", str(reviewed), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 3 and f"{reviewed}:2:" in err and "no_such_intent" in err
    assert registry_state(project["registry"]) == before


@pytest.mark.slow
def test_a_worse_candidate_is_registered_but_not_promoted_and_the_report_says_why(project, tmp_path, capsys):  # noqa: F811
    # a "reviewer" who labels every greeting and tracking question as refund: the candidate, chosen on a dev set
    # of refund questions, gets better there and worse on the frozen regression set of greetings and tracking
    wrong = [review_line(t, "refund", "greet", "relabel") for t in GREET] + \
            [review_line(t, "refund", "track_order", "relabel") for t in TRACK]
    reviewed = write_lines(tmp_path / "reviewed.jsonl", wrong)
    dev = write_lines(tmp_path / "dev.jsonl", [{"text": t, "intent": "refund", "entities": []} for t in HELD_BACK])
    regression = write_lines(tmp_path / "regression.jsonl",
                             [{"text": t, "intent": i, "entities": []}
                              for i, texts in (("greet", GREET), ("track_order", TRACK)) for t in texts])
    current, count = registry_state(project["registry"])
    code = main(["retrain", "--config", str(project["config"]), "--reviewed", str(reviewed), "--dev", str(dev),
                 "--regression", str(regression), "--tolerance", "0", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 9 and "not promoted" in captured.err and "regression" in captured.err, captured
    registry = DirectoryRegistry(project["registry"])
    assert registry.current("model").version == current  # still the old one
    candidates = [e for e in registry.list("model") if e.status == "candidate"]
    assert len(registry.list("model")) == count + 1 and len(candidates) == 1
    candidate = candidates[0]
    assert candidate.gate["passed"] is False and candidate.parent == current
    report = (Path(candidate.report) / "report.md").read_text()
    assert "promoted: no" in report.lower() and "regression" in report
    # promoting it by hand is refused too, unless forced
    assert main(["models", "promote", candidate.version, "--config", str(project["config"])]) == 9
    assert main(["models", "promote", candidate.version, "--force", "--config", str(project["config"])]) == 0
    assert DirectoryRegistry(project["registry"]).current("model").version == candidate.version


def test_a_registry_that_cannot_be_written_is_a_clear_error_and_the_model_is_untouched(project, tmp_path, capsys):  # noqa: F811
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    reviewed = write_lines(tmp_path / "reviewed.jsonl", [review_line("refund please", "refund", "greet", "relabel")])
    first = project["first"]
    files_before = {p.name: p.stat().st_mtime_ns for p in first.iterdir()}
    code = main(["retrain", "--config", str(project["config"]), "--registry", str(blocker / "registry"),
                 "--reviewed", str(reviewed), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 8 and str(blocker) in err
    assert {p.name: p.stat().st_mtime_ns for p in first.iterdir()} == files_before


@pytest.mark.slow
def test_reviewed_qa_pairs_become_a_new_index_version_promoted_with_the_model(project, tmp_path, capsys):  # noqa: F811
    items = [review_line(t, "refund", "greet", "relabel") for t in REFUND]
    items.append(review_line("can i get my money back for a broken kettle", "refund", "refund", "accept", kind="qa",
                             answer="Yes: send it back within 30 days and we refund you."))
    reviewed = write_lines(tmp_path / "reviewed.jsonl", items)
    code = main(["retrain", "--config", str(project["config"]), "--reviewed", str(reviewed),
                 "--dev", str(project["dev"]), "--no-progress", "--force"])
    out = capsys.readouterr().out
    assert code == 0, out
    registry = DirectoryRegistry(project["registry"])
    index = registry.current("index")
    assert index is not None and "index" in out and index.version in out
    records = [json.loads(line) for line in (index.path / "records.jsonl").read_text().splitlines()]
    assert any("broken kettle" in r["question"] and "30 days" in r["answer"] for r in records)
