"""Containment benchmark: customer-support bots built from public data sets, measured end to end.

    python benchmarks/containment.py                          # every bot (about an hour on 2 cores, resumable)
    python benchmarks/containment.py --bots clinc_banking     # one bot

For each bot (see :mod:`benchmarks.containment_data`): write its files under ``benchmarks/cache/containment/``,
train its model with ``csbot train`` defaults (no out-of-scope data), build its Q&A index from the training
messages with ``csbot index build``, then send every held-back in-scope message and about half as many
out-of-scope messages through the real dialogue manager with ``csbot evaluate bot``, three times: at the default
configuration, with the model's out-of-scope neighbour detector switched off (``nlu.oos_neighbours: false``),
and with the intent threshold the model chose on dev switched off too (the domain's fixed 0.5, as before issue
14), so the gain of each shows. Models and indexes already built are reused; results are written after each bot.
Writes ``benchmarks/results/containment.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    CACHE,
    RESULTS,
    datasets_dir,
    load_results,
    machine,
    machine_line,
    now,
    run_csbot,
    save_results,
)
from benchmarks.containment_data import build, write_files

BOTS = ("banking77", "clinc_banking")
TARGETS = {"precision": 0.95, "containment": 0.85, "oos_abstain_rate": 0.90}
KEYS = ("containment", "precision", "oos_abstain_rate", "clarify_share", "fallback_share", "handoff_share")


def csbot(*args: str, log: Path) -> None:
    """Run a csbot command (this checkout's), its output appended to ``log``; a failure stops the benchmark."""
    run_csbot(*args, log=log)


def evaluate(config: Path, paths: dict[str, Path], report: Path, log: Path) -> dict[str, Any]:
    csbot("evaluate", "bot", "--config", str(config), "--data", str(paths["held.csv"]),
          "--out-of-scope", str(paths["oos.txt"]), "--report", str(report), log=log)
    data = json.loads((report / "report.json").read_text(encoding="utf-8"))
    return {key: data.get(key) for key in (*KEYS, "n", "n_in_scope", "n_out_of_scope", "right", "wrong",
                                           "unattributed", "latency", "intent_threshold", "retrieval_threshold")}


def run_bot(name: str, root: Path, force: bool) -> dict[str, Any]:
    out = CACHE / "containment" / name
    paths = write_files(build(name, root), out)
    log = out / "run.log"
    started = time.time()
    model, index = out / "model", out / "index"
    if force or not (model / "csbot-model.json").is_file():
        csbot("train", "--config", str(paths["config.yml"]), "--data", str(paths["train.csv"]), "--out", str(model),
              "--no-progress", log=log)
    if force or not (index / "csbot-index.json").is_file():
        csbot("index", "build", "--config", str(paths["config.yml"]), "--qa", str(paths["qa.csv"]), "--out", str(index),
              log=log)
    calibration = json.loads((model / "calibration.json").read_text(encoding="utf-8"))
    index_manifest = json.loads((index / "csbot-index.json").read_text(encoding="utf-8"))
    with_detection = evaluate(paths["config.yml"], paths, out / "report", log)
    off = out / "config-no-oos.yml"
    off.write_text(paths["config.yml"].read_text(encoding="utf-8") + "nlu:\n  oos_neighbours: false\n", encoding="utf-8")
    without = evaluate(off, paths, out / "report-no-oos", log)
    # as before issue 14: no neighbour detector and the fixed intent threshold 0.5 (no dev-chosen one)
    import yaml

    domain = yaml.safe_load(paths["domain.yml"].read_text(encoding="utf-8"))
    domain["thresholds"] = {"intent": 0.5}
    old_domain = out / "domain-fixed-threshold.yml"
    old_domain.write_text(yaml.safe_dump(domain, sort_keys=True), encoding="utf-8")
    config = yaml.safe_load(off.read_text(encoding="utf-8"))
    config["bot"]["domain"] = str(old_domain)
    old = out / "config-no-model-thresholds.yml"
    old.write_text(yaml.safe_dump(config, sort_keys=True), encoding="utf-8")
    before = evaluate(old, paths, out / "report-no-model-thresholds", log)
    return {
        **{key: with_detection[key] for key in KEYS},
        "n": with_detection["n"], "n_in_scope": with_detection["n_in_scope"],
        "n_out_of_scope": with_detection["n_out_of_scope"], "unattributed": with_detection["unattributed"],
        "latency": with_detection["latency"],
        "thresholds": {"intent": with_detection["intent_threshold"], "retrieval": with_detection["retrieval_threshold"],
                       "neighbour": calibration.get("neighbour_threshold"),
                       "neighbour_accept_rate": calibration.get("neighbour_accept_rate"),
                       "temperature": calibration.get("temperature"),
                       "retrieval_method": index_manifest.get("threshold_method")},
        "without_oos_detection": {key: without[key] for key in KEYS},
        "without_model_thresholds": {key: before[key] for key in KEYS},
        "train_messages": sum(1 for _ in open(paths["train.csv"], encoding="utf-8")) - 1,
        "seconds": round(time.time() - started, 1),
    }


def write_markdown(results: dict[str, Any], path: Path) -> None:
    lines = ["# Containment benchmark", "", machine_line(results),
             f"Command: `{results.get('command')}`. Each bot: `csbot train` defaults on its training messages (no "
             "out-of-scope data), one template per intent, a Q&A index of the training messages; held-back in-scope "
             "messages plus about half as many out-of-scope ones through `csbot evaluate bot`. The last two columns "
             "(containment / precision / OOS abstention) switch off the model's out-of-scope neighbour detector, then "
             "also the intent threshold the model chose on dev (the domain's fixed 0.5, as before); the Q&A index "
             "keeps its own threshold in every column.", "",
             "| bot | in scope | out of scope | containment | precision | OOS abstention | clarified | fell back | "
             "handed over | neighbour detector off | detector off and intent threshold 0.5 (before) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]

    def pct(value: Any) -> str:
        return "—" if value is None else f"{100 * value:.1f}%"

    for name, bot in results.get("bots", {}).items():
        off = bot["without_oos_detection"]
        before = bot.get("without_model_thresholds") or {k: None for k in KEYS}
        lines.append(f"| {name} | {bot['n_in_scope']} | {bot['n_out_of_scope']} | {pct(bot['containment'])} | "
                     f"{pct(bot['precision'])} | {pct(bot['oos_abstain_rate'])} | {pct(bot['clarify_share'])} | "
                     f"{pct(bot['fallback_share'])} | {pct(bot['handoff_share'])} | {pct(off['containment'])} / "
                     f"{pct(off['precision'])} / {pct(off['oos_abstain_rate'])} | {pct(before['containment'])} / "
                     f"{pct(before['precision'])} / {pct(before['oos_abstain_rate'])} |")
    lines += ["", "Targets for every bot at the default configuration: " +
              ", ".join(f"{k} ≥ {v:.2f}" for k, v in TARGETS.items()) + "."]
    for name, bot in results.get("bots", {}).items():
        short = [f"{k} {bot[k]:.3f} (short by {v - bot[k]:.3f})" for k, v in TARGETS.items()
                 if bot.get(k) is not None and bot[k] < v]
        lines.append(f"- {name}: " + ("; ".join(short) if short else "all met") +
                     f"; thresholds {bot['thresholds']}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bots", nargs="+", choices=BOTS, default=list(BOTS))
    parser.add_argument("--force", action="store_true", help="train and index again, measure again")
    parser.add_argument("--out", type=Path, default=RESULTS / "containment.json")
    args = parser.parse_args()
    root = datasets_dir()
    if not (root / "banking77").is_dir():
        raise SystemExit(f"no data sets in {root}: set CSBOT_DATASETS")
    results = load_results(args.out)
    results.setdefault("bots", {})
    results.update(machine=machine(), measured_at=now(), targets=TARGETS,
                   command="python " + " ".join(["benchmarks/containment.py", *sys.argv[1:]]))
    for name in args.bots:
        results["bots"][name] = run_bot(name, root, args.force)
        print(name, json.dumps({k: results["bots"][name][k] for k in KEYS}), flush=True)
        save_results(args.out, results)
        write_markdown(results, args.out.with_suffix(".md"))


if __name__ == "__main__":
    main()
