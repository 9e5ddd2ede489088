"""NLU benchmark: our joint model against the plain Hugging Face recipe on the dev splits.

    python benchmarks/nlu.py                         # every data set, every part (hours on 2 cores)
    python benchmarks/nlu.py --datasets atis --parts ours,baseline
    python benchmarks/nlu.py --parts latency         # inference speed only

Resumable: each (data set, part) is written to ``benchmarks/results/nlu.json`` as soon as it
finishes and skipped on the next run unless ``--force``. ``nlu.md`` is regenerated from the JSON.
On a CUDA machine write to ``nlu-gpu.json`` with ``--out``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import CACHE, RESULTS, datasets_dir, load_results, machine, now, save_results

log = logging.getLogger("benchmarks.nlu")

DATASETS = ("snips", "atis", "banking77", "clinc150", "nlupp_banking")
PARTS = ("ours", "baseline", "latency")
METRIC_KEYS = (
    "n", "intent_accuracy", "intent_macro_f1", "slot_f1", "exact_match",
    "in_scope_accuracy", "oos_recall", "oos_precision",
)
TARGETS = {
    "snips": {"intent_accuracy": 0.985, "slot_f1": 0.960},
    "atis": {"intent_accuracy": 0.975, "slot_f1": 0.950},
    "banking77": {"intent_accuracy": 0.930},
    "clinc150": {"in_scope_accuracy": 0.955, "oos_recall": 0.90},
}
LATENCY_TEXT = "where is my order 48213? it was due on monday"


def load_splits(name: str) -> tuple[list, list]:
    """Train and dev examples of one benchmark data set, as the issue defines the splits."""
    from training.data import load_dataset, stratified_split

    root = datasets_dir()
    if name in ("snips", "atis"):
        return load_dataset([root / name / "train"]), load_dataset([root / name / "dev"])
    if name == "banking77":
        return stratified_split(load_dataset([root / "banking77" / "train.csv"]), 0.1, seed=13)
    if name == "clinc150":
        path = root / "clinc150" / "data_full_train_val.json"
        return load_dataset([f"{path}@train,oos_train"]), load_dataset([f"{path}@val,oos_val"])
    if name == "nlupp_banking":
        path = root / "nlupp" / "banking"
        return load_dataset([f"{path}@0-7"]), load_dataset([f"{path}@8-9"])
    raise SystemExit(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")


def pick(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: metrics[k] for k in METRIC_KEYS if k in metrics}


def evaluate_model(model: Any, dev: list) -> dict[str, Any]:
    from training.evaluation import evaluate_predictions

    predictions = model.parse([ex.text for ex in dev])
    return evaluate_predictions(dev, predictions, oos_label=model.labels.oos_label)


# -- our recipe ------------------------------------------------------------------------------------
def run_ours(name: str, args: argparse.Namespace) -> dict[str, Any]:
    from csbot.settings import load_config
    from nlu.inference import NLUModel
    from training.trainer import Trainer

    train, dev = load_splits(name)
    overrides = {"epochs": args.epochs, "device": args.device, "seed": args.seed}
    config = load_config(None, {f"training.{key}": value for key, value in overrides.items()}).training
    out = CACHE / "nlu" / name / "model"
    started = time.perf_counter()
    result = Trainer(config, train, dev, out_dir=out, show_progress=args.progress).run()
    wall = time.perf_counter() - started
    metrics = result.metrics
    entry: dict[str, Any] = pick(metrics)
    entry.update(
        train_examples=len(train),
        dev_examples=len(dev),
        train_seconds_per_epoch=round(result.seconds_per_epoch, 1),
        epochs_run=result.epochs_run,
        best_epoch=result.best_epoch,
        total_seconds=round(wall, 1),
        multi_label=result.bundle.labels.multi_label,
        calibration={k: metrics["calibration"].get(k) for k in ("temperature", "oos_score", "oos_threshold", "threshold_source", "oos_dev", "ece_before", "ece_after")},
        config={k: getattr(config, k) for k in ("base_model", "epochs", "min_steps", "batch_size", "learning_rate", "head_learning_rate", "patience", "seed")},
        measured_at=now(),
    )
    optimised = {}
    for backend in args.optimised_backends:
        fast = NLUModel.load(out, backend=backend)
        fast_metrics = pick(evaluate_model(fast, dev))
        optimised[backend] = {
            f"{k}_delta": round(fast_metrics[k] - entry[k], 6)
            for k in fast_metrics
            if isinstance(fast_metrics.get(k), float) and isinstance(entry.get(k), float)
        }
    entry["optimised"] = optimised
    if name in TARGETS:
        entry["targets"] = {k: {"target": v, "met": bool(entry.get(k) is not None and entry[k] >= v)} for k, v in TARGETS[name].items()}
    return entry


# -- the plain Hugging Face recipe -----------------------------------------------------------------
def _plain_loop(model: Any, batches: Callable[[int], list[dict]], epochs: int, lr: float, device: str) -> float:
    """What transformers' Trainer does by default: AdamW, linear decay without warm-up. Returns s/epoch."""
    import torch

    steps = sum(len(batches(e)) for e in range(epochs))
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: max(0.0, 1 - s / max(1, steps)))
    model.to(device).train()
    seconds = 0.0
    for epoch in range(epochs):
        started = time.perf_counter()
        for batch in batches(epoch):
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = model(**batch).loss
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            scheduler.step()
        seconds += time.perf_counter() - started
    model.eval()
    return seconds / epochs


def run_baseline(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """AutoModelForSequenceClassification (+ AutoModelForTokenClassification when the data has slots),
    lr 2e-5, 5 epochs, batch 16, first-piece word labels: the recipe a user would otherwise write."""
    import random

    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

    from nlu.alignment import IGNORE_INDEX, decode_entities, word_tags, words_of
    from nlu.calibration import sigmoid, softmax
    from nlu.encoders import resolve_encoder
    from nlu.labels import LabelMaps
    from nlu.schema import IntentScore, ParseResult
    from training.evaluation import evaluate_predictions

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    train, dev = load_splits(name)
    source = resolve_encoder("all-MiniLM-L6-v2")
    tokenizer = AutoTokenizer.from_pretrained(source)
    device = "cuda" if torch.cuda.is_available() and args.device != "cpu" else "cpu"
    maps = LabelMaps.from_examples(train + dev)
    multi = name == "nlupp_banking"  # a user would pick multi-label only where the data is a list of intents
    classes = maps.intents if multi else sorted({ex.intent for ex in train + dev})
    class_id = {c: i for i, c in enumerate(classes)}
    enc = tokenizer([ex.text for ex in train], truncation=True, max_length=128, return_offsets_mapping=True)
    epochs, batch_size, lr = 5, 16, 2e-5

    def order(epoch: int) -> list[list[int]]:
        idx = list(range(len(train)))
        random.Random(args.seed + epoch).shuffle(idx)
        return [idx[i : i + batch_size] for i in range(0, len(idx), batch_size)]

    def pad(rows: list[list[int]], value: int) -> torch.Tensor:
        width = max(len(r) for r in rows)
        return torch.tensor([r + [value] * (width - len(r)) for r in rows])

    def seq_batches(epoch: int) -> list[dict]:
        out = []
        for chunk in order(epoch):
            ids = [enc["input_ids"][i] for i in chunk]
            if multi:
                labels = torch.zeros((len(chunk), len(classes)))
                for r, i in enumerate(chunk):
                    for label in train[i].intents:
                        labels[r, class_id[label]] = 1.0
            else:
                labels = torch.tensor([class_id[train[i].intent] for i in chunk])
            out.append({"input_ids": pad(ids, tokenizer.pad_token_id), "attention_mask": pad([[1] * len(x) for x in ids], 0), "labels": labels})
        return out

    seq_model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=len(classes), problem_type="multi_label_classification" if multi else "single_label_classification"
    )
    seq_seconds = _plain_loop(seq_model, seq_batches, epochs, lr, device)

    has_slots = bool(maps.slot_types)
    tok_seconds = 0.0
    if has_slots:
        word_labels = []
        for i, ex in enumerate(train):
            words = words_of([tuple(o) for o in enc["offset_mapping"][i]], enc.word_ids(i))
            labels = [IGNORE_INDEX] * len(enc["input_ids"][i])
            for word, tag in zip(words, word_tags(words, ex.entities)):
                labels[word.first_piece] = maps.tag_id(tag)
            word_labels.append(labels)

        def tok_batches(epoch: int) -> list[dict]:
            out = []
            for chunk in order(epoch):
                ids = [enc["input_ids"][i] for i in chunk]
                out.append({"input_ids": pad(ids, tokenizer.pad_token_id), "attention_mask": pad([[1] * len(x) for x in ids], 0),
                            "labels": pad([word_labels[i] for i in chunk], IGNORE_INDEX)})
            return out

        tok_model = AutoModelForTokenClassification.from_pretrained(source, num_labels=maps.num_tags)
        tok_seconds = _plain_loop(tok_model, tok_batches, epochs, lr, device)

    predictions = []
    dev_enc = tokenizer([ex.text for ex in dev], truncation=True, max_length=128, return_offsets_mapping=True)
    with torch.inference_mode():
        for start in range(0, len(dev), 64):
            rows = list(range(start, min(len(dev), start + 64)))
            ids = pad([dev_enc["input_ids"][i] for i in rows], tokenizer.pad_token_id).to(device)
            mask = pad([[1] * len(dev_enc["input_ids"][i]) for i in rows], 0).to(device)
            intent_logits = seq_model(input_ids=ids, attention_mask=mask).logits.float().cpu().numpy()
            slot_logits = tok_model(input_ids=ids, attention_mask=mask).logits.float().cpu().numpy() if has_slots else None
            for r, i in enumerate(rows):
                text = dev[i].text
                n = len(dev_enc["input_ids"][i])
                entities = (
                    decode_entities(text, [tuple(o) for o in dev_enc["offset_mapping"][i]], dev_enc.word_ids(i), softmax(slot_logits[r, :n]), maps,
                                    constrained=False)  # the plain recipe: argmax per word
                    if has_slots else []
                )
                if multi:
                    probs = sigmoid(intent_logits[r])
                    chosen = [IntentScore(classes[j], float(probs[j])) for j in np.argsort(-probs) if probs[j] >= 0.5]
                    intent = IntentScore("#".join(s.name for s in chosen), min((s.confidence for s in chosen), default=0.0))
                else:
                    probs = softmax(intent_logits[r])
                    j = int(np.argmax(probs))
                    chosen = [IntentScore(classes[j], float(probs[j]))]
                    intent = chosen[0]
                predictions.append(ParseResult(text, intent, chosen, entities, intent.name == maps.oos_label, chosen))
    metrics = evaluate_predictions(dev, predictions, oos_label=maps.oos_label)
    entry = pick(metrics)
    entry.update(
        recipe="AutoModelForSequenceClassification" + (" + AutoModelForTokenClassification" if has_slots else "")
        + f", lr {lr}, {epochs} epochs, batch {batch_size}",
        train_seconds_per_epoch=round(seq_seconds + tok_seconds, 1),
        epochs_run=epochs,
        measured_at=now(),
    )
    return entry


# -- inference speed -------------------------------------------------------------------------------
def run_latency(args: argparse.Namespace, results: dict[str, Any]) -> dict[str, Any]:
    """Single-message p50/p99 and batch-32 throughput per backend, on a trained benchmark model."""
    from nlu.inference import NLUModel

    name = next((d for d in ("banking77", "clinc150", "snips", "atis", "nlupp_banking") if (CACHE / "nlu" / d / "model").is_dir()), None)
    if name is None:
        raise SystemExit("latency needs a trained model: run the 'ours' part of one data set first")
    _, dev = load_splits(name)
    texts = [ex.text for ex in dev]
    out: dict[str, Any] = {"model": name, "text": LATENCY_TEXT, "measured_at": now()}
    for backend in ("torch",) + tuple(args.optimised_backends):
        model = NLUModel.load(CACHE / "nlu" / name / "model", backend=backend, device=args.device)
        for _ in range(20):
            model.parse([LATENCY_TEXT])
        single = []
        for _ in range(args.latency_runs):
            started = time.perf_counter()
            model.parse([LATENCY_TEXT])
            single.append((time.perf_counter() - started) * 1000)
        single.sort()
        batches = [texts[i : i + 32] for i in range(0, min(len(texts), 32 * 40), 32)]
        model.parse(batches[0])
        started = time.perf_counter()
        for batch in batches:
            model.parse(batch)
        elapsed = time.perf_counter() - started
        out[backend] = {
            "single_p50_ms": round(statistics.median(single), 2),
            "single_p99_ms": round(single[min(len(single) - 1, int(len(single) * 0.99))], 2),
            "batch32_sentences_per_s": round(sum(len(b) for b in batches) / elapsed, 1),
            "device": model.device,
        }
        print(f"latency {backend}: {out[backend]}", flush=True)
    return out


# -- report ----------------------------------------------------------------------------------------
def fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("—" if value is None else str(value))


def secs(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else "—"


def write_markdown(results: dict[str, Any], path: Path) -> None:
    m = results.get("machine", {})
    lines = [
        "# NLU benchmark",
        "",
        f"Machine: {m.get('hostname_kind')}, {m.get('cpu')}, {m.get('cores')} cores, torch {m.get('torch')} "
        f"({m.get('torch_threads')} threads){', GPU ' + m['cuda'] if m.get('cuda') else ''}.",
        f"Command: `{results.get('command', 'python benchmarks/nlu.py')}`. Dev splits as in issue 3; default encoder all-MiniLM-L6-v2.",
        "",
        "| data set | intent acc | macro F1 | slot F1 | exact | in-scope | OOS recall | OOS prec | s/epoch | epochs | baseline intent | baseline slot F1 | baseline s/epoch |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in DATASETS:
        ours, base = results.get("datasets", {}).get(name), results.get("baseline", {}).get(name, {})
        if not ours and not base:
            continue
        ours = ours or {}
        lines.append(
            f"| {name} | {fmt(ours.get('intent_accuracy'))} | {fmt(ours.get('intent_macro_f1'))} | {fmt(ours.get('slot_f1'))} | "
            f"{fmt(ours.get('exact_match'))} | {fmt(ours.get('in_scope_accuracy'))} | {fmt(ours.get('oos_recall'))} | "
            f"{fmt(ours.get('oos_precision'))} | {secs(ours.get('train_seconds_per_epoch'))} | {fmt(ours.get('epochs_run'))} | "
            f"{fmt(base.get('intent_accuracy'))} | {fmt(base.get('slot_f1'))} | {secs(base.get('train_seconds_per_epoch'))} |"
        )
    lines += ["", "Targets (dev):", ""]
    for name, targets in TARGETS.items():
        ours = results.get("datasets", {}).get(name, {})
        for key, target in targets.items():
            got = ours.get(key)
            status = "not run" if got is None else ("met" if got >= target else f"short by {target - got:.4f}")
            lines.append(f"- {name} {key} ≥ {target}: {fmt(got)} ({status})")
    lat = results.get("latency")
    if lat:
        lines += ["", f"Inference on the {lat.get('model')} model, text `{lat.get('text')}`:", "",
                  "| backend | single p50 ms | single p99 ms | batch-32 sentences/s |", "|---|---|---|---|"]
        for backend, row in lat.items():
            if isinstance(row, dict):
                lines.append(f"| {backend} | {secs(row['single_p50_ms'])} | {secs(row['single_p99_ms'])} | {secs(row['batch32_sentences_per_s'])} |")
        lines += ["", "Accuracy cost of the optimised paths (dev, optimised minus torch):", ""]
        for name, ours in results.get("datasets", {}).items():
            for backend, delta in ours.get("optimised", {}).items():
                lines.append(f"- {name} {backend}: " + ", ".join(f"{k} {v:+.4f}" for k, v in delta.items()))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--epochs", type=int, default=None, help="maximum epochs of our recipe (default: config)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--optimised-backends", default="onnx,onnx-int8")
    parser.add_argument("--latency-runs", type=int, default=300)
    parser.add_argument("--out", type=Path, default=RESULTS / "nlu.json")
    parser.add_argument("--force", action="store_true", help="re-run parts already in the results file")
    parser.add_argument("--progress", action="store_true", help="show the training progress bar")
    args = parser.parse_args()
    args.optimised_backends = [b for b in args.optimised_backends.split(",") if b]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("transformers", "httpx", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    results = load_results(args.out)
    results.setdefault("datasets", {})
    results.setdefault("baseline", {})
    command = "python " + " ".join(["benchmarks/nlu.py"] + sys.argv[1:])

    def stamp() -> None:
        """Record where and how the part about to run is measured (a resumed run keeps the others)."""
        results["machine"] = machine()
        results["command"] = command
    parts = [p for p in args.parts.split(",") if p]
    for name in [d for d in args.datasets.split(",") if d]:
        for part, key, fn in (("ours", "datasets", run_ours), ("baseline", "baseline", run_baseline)):
            if part not in parts:
                continue
            if name in results[key] and not args.force:
                print(f"{name} {part}: already measured, skipping (use --force)", flush=True)
                continue
            print(f"{name} {part}: running", flush=True)
            stamp()
            entry = fn(name, args)
            results[key][name] = entry
            ours, base = results["datasets"].get(name), results["baseline"].get(name)
            if ours and base:
                base["ratio_ours_to_baseline"] = {
                    k: round(ours[k] / base[k], 4) for k in METRIC_KEYS[1:] if isinstance(ours.get(k), float) and base.get(k)
                }
            save_results(args.out, results)
            write_markdown(results, args.out.with_suffix(".md"))
            print(f"{name} {part}: {pick(entry)}", flush=True)
    if "latency" in parts and ("latency" not in results or args.force):
        stamp()
        results["latency"] = run_latency(args, results)
        save_results(args.out, results)
    write_markdown(results, args.out.with_suffix(".md"))


if __name__ == "__main__":
    main()
