"""The ``csbot`` command line: help, one-line errors with exit codes, and the NLU commands end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO, TINY_EXAMPLES

from bot.cli import main

SUBCOMMANDS = ("train", "evaluate", "nlu", "data")


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_lists_every_subcommand_with_a_description(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for name in SUBCOMMANDS:
        line = next(line for line in out.splitlines() if line.strip().startswith(name + " "))
        assert len(line.split(None, 1)[1]) > 10, line


@pytest.mark.parametrize("args", [("train",), ("evaluate",), ("evaluate", "nlu"), ("evaluate", "bot"), ("nlu", "parse"),
                                  ("data", "convert"), ("data", "stats")])
def test_each_subcommand_has_help(capsys, args):
    code, out, _ = run_cli(capsys, *args, "--help")
    assert code == 0 and "Usage: csbot" in out and "--" in out


def test_help_does_not_import_torch():
    code = "import sys; from bot.cli import main; main(['--help']); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_missing_model_is_one_line_and_exit_code(capsys, tmp_path):
    code, _out, err = run_cli(capsys, "nlu", "parse", "--model", str(tmp_path / "none"), "hello")
    assert code == 4
    assert err.strip().splitlines() == [f"error: {tmp_path / 'none'}: no such model directory"]
    assert "Traceback" not in err


def test_verbose_shows_the_traceback(capsys, tmp_path):
    code, _, err = run_cli(capsys, "--verbose", "nlu", "parse", "--model", str(tmp_path / "none"), "hello")
    assert code == 4 and "Traceback" in err and "no such model directory" in err


def test_bad_data_names_file_and_line(capsys, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hi", "intent": "greet"}\n{"text": broken\n')
    code, _, err = run_cli(capsys, "data", "stats", str(bad))
    assert code == 3
    assert err.startswith(f"error: {bad}:2:") and len(err.strip().splitlines()) == 1


def test_usage_error_exits_2(capsys):
    code, _, err = run_cli(capsys, "train", "--data", "x.jsonl")
    assert code == 2 and "--out" in err


def test_convert_writes_canonical_jsonl(capsys, tmp_path):
    src = tmp_path / "nlu.yml"
    src.write_text('version: "3.1"\nnlu:\n- intent: track\n  examples: |\n    - where is [48213](order_id)\n    - status please\n')
    out = tmp_path / "out.jsonl"
    code, stdout, _ = run_cli(capsys, "data", "convert", str(src), "--out", str(out))
    assert code == 0 and "wrote 2 examples" in stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0] == {"text": "where is 48213", "intent": "track",
                       "entities": [{"start": 9, "end": 14, "entity": "order_id", "value": "48213"}]}


def test_convert_refuses_an_existing_out_unless_forced(capsys, tmp_path):
    src = tmp_path / "nlu.csv"
    src.write_text("text,label\nwhere is my order,track\n")
    out = tmp_path / "out.jsonl"
    out.write_text("keep me\n")
    code, stdout, err = run_cli(capsys, "data", "convert", str(src), "--out", str(out))
    assert code == 2 and stdout == "" and "'--out'" in err and "--force" in err
    assert out.read_text() == "keep me\n"
    code, stdout, _ = run_cli(capsys, "data", "convert", str(src), "--out", str(out), "--force")
    assert code == 0 and "wrote 1 examples" in stdout and json.loads(out.read_text())["intent"] == "track"


@pytest.mark.parametrize(("name", "content"), [("empty.jsonl", ""), ("blank.csv", "text,label\n"), ("nlu.yml", "nlu: []\n")])
def test_convert_of_empty_data_is_an_error_and_writes_nothing(capsys, tmp_path, name, content):
    src = tmp_path / name
    src.write_text(content)
    out = tmp_path / "out.jsonl"
    code, _, err = run_cli(capsys, "data", "convert", str(src), "--out", str(out))
    assert code == 3 and err.startswith(f"error: {src}: ") and not out.exists()
    out.write_text("keep me\n")
    code, _, err = run_cli(capsys, "data", "convert", str(src), "--out", str(out), "--force")
    assert code == 3 and out.read_text() == "keep me\n"


@pytest.mark.parametrize(("name", "content"), [
    ("huge.json", '[{"text": "x", "intents": [' + "1" * 5000 + "]}]"),
    ("deep.json", "[" * 100_000 + "]" * 100_000),
    ("deep.jsonl", "[" * 100_000 + "]" * 100_000 + "\n"),
    ("huge.yml", "nlu:\n- intent: " + "1" * 5000 + "\n  examples: |\n    - x\n"),
    ("deep.yml", "nlu: " + "[" * 100_000 + "]" * 100_000 + "\n"),
    ("dup.yml", "nlu:\n- intent: a\n  examples: |\n    - x\nnlu:\n- intent: b\n  examples: |\n    - y\n"),
])
def test_hostile_data_is_one_error_line_naming_the_file_never_exit_70(capsys, tmp_path, name, content):
    src = tmp_path / name
    src.write_text(content)
    code, _, err = run_cli(capsys, "data", "stats", str(src), *(["--format", "nlupp"] if name.endswith(".json") else []))
    assert code == 3 and err.startswith(f"error: {src}") and len(err.strip().splitlines()) == 1, err
    assert "unexpected" not in err


@pytest.mark.parametrize("texts", [("",), ("   ",), ("where is my order", "\t")])
def test_nlu_parse_refuses_an_empty_text(capsys, tiny_model_dir, texts):
    code, out, err = run_cli(capsys, "nlu", "parse", "--model", str(tiny_model_dir), *texts)
    assert code == 2 and out == "" and "'TEXTS'" in err and "empty" in err


def test_parse_and_evaluate_with_a_saved_model(capsys, tiny_model_dir, tmp_path):
    code, out, _ = run_cli(capsys, "nlu", "parse", "--model", str(tiny_model_dir), "where is my order 48213", "hi")
    assert code == 0
    results = json.loads(out)
    assert [r["text"] for r in results] == ["where is my order 48213", "hi"]
    assert all({"intent", "intent_ranking", "entities", "out_of_scope"} <= set(r) for r in results)

    data = tmp_path / "dev.jsonl"
    data.write_text("\n".join(json.dumps(d) for d in TINY_EXAMPLES) + "\n")
    report = tmp_path / "report"
    code, out, _ = run_cli(capsys, "evaluate", "--model", str(tiny_model_dir), "--data", str(data), "--report", str(report))
    assert code == 0
    metrics = json.loads((report / "report.json").read_text())
    assert metrics["n"] == len(TINY_EXAMPLES)
    for key in ("intent_accuracy", "intent_macro_f1", "slot_f1", "exact_match"):
        assert 0.0 <= metrics[key] <= 1.0
    assert (report / "report.md").is_file() and (report / "confusion.png").is_file()


def test_train_command_end_to_end(capsys, tiny_encoder_dir, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps(d) for d in TINY_EXAMPLES * 3) + "\n")
    out = tmp_path / "model"
    code, _, err = run_cli(capsys, "train", "--data", str(data), "--base-model", str(tiny_encoder_dir),
                           "--epochs", "2", "--dev-split", "0.3", "--no-progress", "--out", str(out), "--device", "cpu")
    assert code == 0, err
    manifest = json.loads((out / "csbot-model.json").read_text())
    assert manifest["base_model"] == str(tiny_encoder_dir)
    assert json.loads((out / "metrics.json").read_text())["training"]["epochs_run"] >= 1


@pytest.mark.parametrize("out", [".", "work"])
def test_train_refuses_an_out_that_is_not_a_model_and_deletes_nothing(capsys, tiny_encoder_dir, tmp_path,
                                                                      monkeypatch, out):
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(d) for d in TINY_EXAMPLES * 3) + "\n")
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    code, stdout, err = run_cli(capsys, "train", "--data", "train.jsonl", "--base-model", str(tiny_encoder_dir),
                                "--epochs", "1", "--no-progress", "--out", out, "--device", "cpu")
    target = (tmp_path / out).resolve()
    assert code == 2 and stdout == "", err
    assert f"error: {target}: exists and is not a csbot NLU model (it holds" in err
    assert "give an empty or new directory" in err and "training on" not in err  # refused before training
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "work" / "notes.txt").read_text() == "mine"


def test_train_reports_the_out_of_scope_score_chosen_on_dev(capsys, tiny_encoder_dir, tmp_path):
    oos = [{"text": t, "intent": "oos"} for t in ("sing me a song", "what is the capital of peru", "tell a joke",
                                                   "who won the game", "how tall is everest", "play some jazz")]
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps(d) for d in (TINY_EXAMPLES + oos) * 3) + "\n")
    out = tmp_path / "model"
    code, _, err = run_cli(capsys, "train", "--data", str(data), "--base-model", str(tiny_encoder_dir),
                           "--epochs", "1", "--dev-split", "0.3", "--no-progress", "--out", str(out), "--device", "cpu")
    assert code == 0, err
    calibration = json.loads((out / "calibration.json").read_text())
    assert calibration["threshold_source"] == "dev" and calibration["oos_score"] in ("probability", "energy")
    line = next(line for line in err.splitlines() if line.startswith("out of scope:"))
    assert f"{calibration['oos_score']} score below" in line and "chosen on dev" in line
    assert "probability: OOS recall" in line and "energy: OOS recall" in line


def test_unknown_encoder_is_a_clear_error(capsys, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps(d) for d in TINY_EXAMPLES * 3) + "\n")
    code, _, err = run_cli(capsys, "train", "--data", str(data), "--base-model", str(tmp_path / "no-such-model"),
                           "--out", str(tmp_path / "m"))
    assert code == 4 and "no-such-model" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_invalid_option_value_names_the_field(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--data", "x.jsonl", "--epochs", "0", "--out", str(tmp_path / "m"))
    assert code == 2
    assert err.startswith("error: option: training.epochs:") and "must be >= 1" in err


# -- csbot evaluate nlu | bot -------------------------------------------------------------------------------


def test_evaluate_help_shows_both_subcommands_and_the_bot_options(capsys):
    code, out, _ = run_cli(capsys, "evaluate", "--help")
    assert code == 0 and "csbot evaluate --model M --data D --report R" in out
    listed = {line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.startswith("  ") and
              not line.startswith("    ")}
    assert listed == {"nlu", "bot"}
    code, out, _ = run_cli(capsys, "evaluate", "bot", "--help")
    for option in ("--config", "--data", "--out-of-scope", "--report", "--limit", "--concurrency"):
        assert option in out


def test_evaluate_without_a_subcommand_is_the_nlu_evaluation(capsys, tiny_model_dir, tmp_path):
    data = tmp_path / "dev.jsonl"
    data.write_text("\n".join(json.dumps(d) for d in TINY_EXAMPLES) + "\n")
    reports = {}
    for form in (("evaluate",), ("evaluate", "nlu")):
        report = tmp_path / "-".join(form)
        code, out, err = run_cli(capsys, *form, "--model", str(tiny_model_dir), "--data", str(data), "--report", str(report))
        assert code == 0, err
        assert "intent_accuracy" in out
        reports[form] = {k: v for k, v in json.loads((report / "report.json").read_text()).items() if k != "latency_ms"}
    assert reports[("evaluate",)]["n"] == len(TINY_EXAMPLES)
    assert reports[("evaluate",)].keys() == reports[("evaluate", "nlu")].keys()
    code, _, err = run_cli(capsys, "evaluate", "--model", str(tmp_path / "none"), "--data", str(data), "--report", "r")
    assert code == 4 and "no such model directory" in err  # routed to nlu, its own error


def test_evaluate_bot_names_the_file_and_line_of_bad_data(capsys, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hi", "intent": "greet"}\n{"text": broken\n')
    code, _, err = run_cli(capsys, "evaluate", "bot", "--data", str(bad), "--report", str(tmp_path / "r"))
    assert code == 3 and err.startswith(f"error: {bad}:2:") and len(err.strip().splitlines()) == 1
    good = tmp_path / "good.jsonl"
    good.write_text('{"text": "hi", "intent": "greet"}\n')
    code, _, err = run_cli(capsys, "evaluate", "bot", "--data", str(good), "--out-of-scope", str(tmp_path / "no.txt"),
                           "--report", str(tmp_path / "r"))
    assert code == 3 and "no.txt" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_evaluate_bot_end_to_end_on_the_demo(capsys, demo_models, tmp_path):
    model, index = demo_models
    data = tmp_path / "labelled.jsonl"
    rows = [("where is my order", "track_order"), ("which payment methods do you accept", "payment_methods"),
            ("how long does delivery take", "delivery_times"), ("hello there", "greet"),
            ("I want to talk to a person", "human_handoff"), ("what is the capital of peru", "oos")]
    data.write_text("".join(json.dumps({"text": t, "intent": i}) + "\n" for t, i in rows))
    extra = tmp_path / "oos.txt"
    extra.write_text("how frequently is the bus running today\nhow is ford's stock doing\n")
    report = tmp_path / "report"
    code, out, err = run_cli(capsys, "evaluate", "bot", "--data", str(data), "--out-of-scope", str(extra),
                             "--model", str(model), "--index", str(index), "--report", str(report),
                             "--concurrency", "3")
    assert code == 0, err
    for word in ("containment", "precision", "OOS abstention", "clarified", "handed over"):
        assert word in out
    result = json.loads((report / "report.json").read_text())
    assert (result["n"], result["n_in_scope"], result["n_out_of_scope"]) == (8, 5, 3)
    assert 0.0 <= result["containment"] <= 1.0 and result["intent_threshold"] == 0.55
    assert len((report / "messages.jsonl").read_text().splitlines()) == 8
    for name in ("report.md", "curve.png", "per_intent.png"):
        assert (report / name).stat().st_size > 0
