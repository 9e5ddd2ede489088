"""Active learning on BANKING77: does reviewing the turns the model is least sure of need fewer labels?

    python benchmarks/active_learning.py                  # every strategy (about an hour on 2 cores, resumable)
    python benchmarks/active_learning.py --rounds 2       # a short run (smoke)

BANKING77's train file is split: a stratified 10% is dev (early stopping, calibration, the accuracy
reported), a stratified 10% of the rest is the labelled start, and everything else is the pool a reviewer would
label from (its gold labels stand in for the reviewer). Each round a batch is taken from the pool, chosen by
the model's uncertainty (``margin`` or ``entropy`` of its calibrated intent probabilities, the picks spread
over the predicted intents: :mod:`training.review.uncertainty`, the same code ``csbot transcripts export``
uses) or at random, added to the labelled set, and the model is retrained on the whole labelled set with a
warm start from the previous round's model (``Trainer(init_from=...)``, what ``csbot retrain`` does). A model
trained from scratch on the whole pool gives the full-data accuracy; the target is that minus one point.

Resumable: every round's state is written to ``benchmarks/cache/active_learning/state.json`` (the labelled
indices and the curve so far), and only the latest model of each strategy is kept. Results:
``benchmarks/results/active_learning.json``, ``.md`` and ``active_learning.png``.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import CACHE, RESULTS, datasets_dir, machine, machine_line

STRATEGIES = ("margin", "entropy", "random")
STATE_DIR = CACHE / "active_learning"


def load_splits(root: Path, seed: int) -> tuple[list, list, list]:
    """(dev, start, pool) examples of BANKING77's train file, as the module docstring says."""
    from training.data import load_dataset, stratified_split

    examples = load_dataset([str(root / "banking77" / "train.csv")])
    rest, dev = stratified_split(examples, 0.1, seed)
    pool, start = stratified_split(rest, 0.1, seed + 1)
    return dev, start, pool


def probabilities(model_dir: Path, texts: list[str]) -> tuple[np.ndarray, list[str]]:
    """The calibrated intent probabilities of ``texts`` (rows) and the model's intent names (columns)."""
    from nlu.calibration import softmax
    from nlu.inference import NLUModel

    model = NLUModel.load(model_dir, device="auto")
    rows = []
    for start in range(0, len(texts), 256):
        logits, _, _, _ = model.forward(texts[start:start + 256])
        rows.append(softmax(logits, model.temperature))
    return np.concatenate(rows), list(model.labels.intents)


def accuracy(model_dir: Path, dev: list) -> float:
    probs, intents = probabilities(model_dir, [ex.text for ex in dev])
    predicted = [intents[i] for i in probs.argmax(1)]
    return float(np.mean([p == ex.intent for p, ex in zip(predicted, dev, strict=True)]))


def pick(strategy: str, model_dir: Path, pool: list, unlabelled: list[int], batch: int, seed: int) -> list[int]:
    """The pool indices to label next."""
    if strategy == "random":
        return sorted(random.Random(seed).sample(unlabelled, min(batch, len(unlabelled))))
    from training.review.items import ReviewInfo, ReviewItem
    from training.review.uncertainty import entropy, margin, spread_over_intents

    probs, intents = probabilities(model_dir, [pool[i].text for i in unlabelled])
    items = []
    for row, index in zip(probs, unlabelled, strict=True):
        top = np.sort(row)[::-1][:5].tolist()
        items.append(ReviewItem(pool[index].text, intents[int(row.argmax())], [], ReviewInfo(
            id=f"{index:06d}", margin=margin(top), entropy=entropy(top), predicted_intent=intents[int(row.argmax())])))
    return sorted(int(item.review.id) for item in spread_over_intents(items, batch, strategy))


def train(examples: list, dev: list, out: Path, epochs: int, seed: int, init_from: Path | None) -> float:
    """Train (warm start from ``init_from`` when given) into ``out``; the seconds it took."""
    from training.config import TrainingConfig
    from training.trainer import Trainer

    config = TrainingConfig(epochs=epochs, min_steps=0, seed=seed, patience=epochs)
    if out.exists():
        shutil.rmtree(out)
    started = time.perf_counter()
    Trainer(config, examples, dev, out_dir=out, show_progress=False, init_from=init_from).run()
    return round(time.perf_counter() - started, 1)


def load_state(args: argparse.Namespace) -> dict[str, Any]:
    path = STATE_DIR / "state.json"
    settings = {"seed": args.seed, "batch": args.batch, "epochs": args.epochs, "start_epochs": args.start_epochs,
                "full_epochs": args.full_epochs}
    if path.is_file() and not args.force:
        state = json.loads(path.read_text())
        if state.get("settings") == settings:
            return state
        print("the settings changed since the saved run: starting over")
    if STATE_DIR.exists():
        shutil.rmtree(STATE_DIR)
    STATE_DIR.mkdir(parents=True)
    return {"settings": settings, "strategies": {}, "start": None, "full": None}


def save_state(state: dict[str, Any]) -> None:
    tmp = STATE_DIR / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(STATE_DIR / "state.json")


def run(args: argparse.Namespace) -> dict[str, Any]:
    dev, start, pool = load_splits(datasets_dir(), args.seed)
    state = load_state(args)
    print(f"dev {len(dev)}, labelled start {len(start)}, pool {len(pool)}; batch {args.batch}, "
          f"{args.epochs} epochs a round")
    start_dir = STATE_DIR / "start-model"
    if state["start"] is None:
        seconds = train(start, dev, start_dir, args.start_epochs, args.seed, None)
        state["start"] = {"labels": len(start), "accuracy": accuracy(start_dir, dev), "seconds": seconds}
        save_state(state)
    print(f"start: {state['start']}")
    if state["full"] is None and args.full_epochs:
        full_dir = STATE_DIR / "full-model"
        seconds = train(start + pool, dev, full_dir, args.full_epochs, args.seed, None)
        state["full"] = {"labels": len(start) + len(pool), "accuracy": accuracy(full_dir, dev), "seconds": seconds}
        shutil.rmtree(full_dir)
        save_state(state)
    print(f"full data: {state['full']}")
    for strategy in args.strategies:
        run_strategy(strategy, state, dev, start, pool, args)
    return state


def run_strategy(strategy: str, state: dict[str, Any], dev: list, start: list, pool: list,
                 args: argparse.Namespace) -> None:
    record = state["strategies"].setdefault(strategy, {"labelled": [], "curve": [], "model": None})
    for round_no in range(len(record["curve"]) + 1, args.rounds + 1):
        labelled = set(record["labelled"])
        unlabelled = [i for i in range(len(pool)) if i not in labelled]
        if not unlabelled:
            break
        previous = Path(record["model"]) if record["model"] else STATE_DIR / "start-model"
        started = time.perf_counter()
        chosen = pick(strategy, previous, pool, unlabelled, args.batch, args.seed + round_no)
        pick_seconds = round(time.perf_counter() - started, 1)
        labelled |= set(chosen)
        out = STATE_DIR / f"{strategy}-{round_no}"
        seconds = train(start + [pool[i] for i in sorted(labelled)], dev, out, args.epochs, args.seed, previous)
        point = {"round": round_no, "labels": len(start) + len(labelled), "accuracy": accuracy(out, dev),
                 "train_seconds": seconds, "pick_seconds": pick_seconds}
        record["labelled"], record["model"] = sorted(labelled), str(out)
        record["curve"].append(point)
        save_state(state)
        if previous.name != "start-model" and previous.exists():
            shutil.rmtree(previous)
        print(f"{strategy} round {round_no}: {point}", flush=True)


def labels_to_reach(curve: list[dict[str, Any]], start: dict[str, Any], target: float) -> int | None:
    """The fewest labels at which a curve reached ``target`` accuracy (None: never, within the rounds run)."""
    for point in [start, *curve]:
        if point["accuracy"] >= target:
            return int(point["labels"])
    return None


def summarise(state: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    full = state["full"]["accuracy"] if state.get("full") else None
    target = round(full - 0.01, 4) if full is not None else None
    strategies = {}
    for name, record in state["strategies"].items():
        reach = labels_to_reach(record["curve"], state["start"], target) if target is not None else None
        strategies[name] = {"curve": [{"labels": state["start"]["labels"], "accuracy": state["start"]["accuracy"]}]
                            + [{k: p[k] for k in ("labels", "accuracy", "train_seconds", "pick_seconds")}
                               for p in record["curve"]],
                            "labels_to_target": reach,
                            "most_labels_tried": record["curve"][-1]["labels"] if record["curve"] else None}
    uncertain = {n: s for n, s in strategies.items() if n != "random"}
    chosen = None
    if uncertain:  # the score that reaches the target with fewest labels, else the best final accuracy
        chosen = min(uncertain, key=lambda n: (uncertain[n]["labels_to_target"] or 10**9,
                                               -uncertain[n]["curve"][-1]["accuracy"]))
    random_reach = strategies.get("random", {}).get("labels_to_target")
    chosen_reach = strategies[chosen]["labels_to_target"] if chosen else None
    ratio = round(chosen_reach / random_reach, 3) if chosen_reach and random_reach else None
    return {
        "machine": machine(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python benchmarks/active_learning.py " + " ".join(sys.argv[1:]),
        "settings": {**state["settings"], "rounds": args.rounds, "dev": "stratified 10% of BANKING77 train",
                     "start": "stratified 10% of the rest", "warm_start": True},
        "start": state["start"],
        "full_data": state["full"],
        "target_accuracy": target,
        "strategies": strategies,
        "chosen_score": chosen,
        "labels_ratio_chosen_vs_random": ratio,
        "target_met": bool(ratio is not None and ratio <= 0.5) if random_reach else None,
        # training, picking and dev evaluation summed (model loading aside): the benchmark's own wall time
        "seconds": round(sum(p.get(k, 0) for r in state["strategies"].values() for p in r["curve"]
                             for k in ("train_seconds", "pick_seconds"))
                         + state["start"]["seconds"] + (state["full"] or {}).get("seconds", 0), 1),
    }


def write_results(results: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(out.read_text()) if out.is_file() else {}
    results = {**existing, **results}
    out.write_text(json.dumps(results, indent=2) + "\n")
    plot(results, out.with_suffix(".png"))
    lines = ["# Active learning (BANKING77)", "", machine_line(results), "",
             f"Command: `{results['command']}`. " + __doc__.split("\n\n")[2].replace("\n", " "), "",
             f"Settings: {results['settings']}. Training and picking took {results.get('seconds', 0) / 60:.0f} "
             "minutes in all.", "",
             f"Start: {results['start']['labels']} labels, dev accuracy {results['start']['accuracy']:.4f}. "
             + (f"Full data ({results['full_data']['labels']} labels, {results['settings']['full_epochs']} epochs from "
                f"scratch): {results['full_data']['accuracy']:.4f}; target {results['target_accuracy']:.4f}."
                if results.get("full_data") else "Full data: not measured."), "",
             "| strategy | labels to reach the target | most labels tried | final accuracy |", "|---|---|---|---|"]
    for name, s in results["strategies"].items():
        lines.append(f"| {name} | {s['labels_to_target'] or 'not reached'} | {s['most_labels_tried']} | "
                     f"{s['curve'][-1]['accuracy']:.4f} |")
    lines += ["", f"Chosen uncertainty score: {results['chosen_score']}. Labels it needs / labels random needs: "
              f"{results['labels_ratio_chosen_vs_random']} (target ≤ 0.5: "
              f"{'met' if results['target_met'] else 'not met' if results['target_met'] is False else 'not decided'}).",
              "", "![learning curve](active_learning.png)", ""]
    for key in ("demo_retrain", "promote_to_serving"):
        if key in results:
            lines.append(f"- {key.replace('_', ' ')}: {results[key]}")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, s in results["strategies"].items():
        ax.plot([p["labels"] for p in s["curve"]], [p["accuracy"] for p in s["curve"]], marker="o", label=name)
    if results.get("target_accuracy") is not None:
        ax.axhline(results["full_data"]["accuracy"], color="grey", linestyle="--", label="full data")
        ax.axhline(results["target_accuracy"], color="grey", linestyle=":", label="target (full - 1 point)")
    ax.set_xlabel("labelled examples")
    ax.set_ylabel("dev intent accuracy")
    ax.set_title("BANKING77: uncertainty vs random sampling (warm-start retraining)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--batch", type=int, default=450, help="pool examples labelled per round")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of each warm-start retrain")
    parser.add_argument("--start-epochs", type=int, default=6, help="epochs of the first model (from scratch)")
    parser.add_argument("--full-epochs", type=int, default=4, help="epochs of the full-data model (0: skip)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--force", action="store_true", help="start over")
    parser.add_argument("--out", type=Path, default=RESULTS / "active_learning.json")
    args = parser.parse_args()
    state = run(args)
    results = summarise(state, args)
    write_results(results, args.out)
    print(json.dumps({k: results[k] for k in ("target_accuracy", "chosen_score", "labels_ratio_chosen_vs_random",
                                              "target_met")}, indent=1))


if __name__ == "__main__":
    main()
