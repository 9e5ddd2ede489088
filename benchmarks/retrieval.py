"""Retrieval benchmark: answer quality on BANKING77 and CLINC150, and index speed at 10k, 100k and 1M records.

    python benchmarks/retrieval.py                       # everything (resumable; --force re-runs)
    python benchmarks/retrieval.py --parts quality --datasets banking77
    python benchmarks/retrieval.py --parts speed --sizes 10000,100000

Quality: the train file as historical Q&A (each intent as the answer key) and held-out queries:
BANKING77 a stratified 10% of train (seed 13), CLINC150 ``val`` with ``oos_val`` that must abstain.
Variants: dense or hybrid scoring, with the default model or after ``--finetune`` on the Q&A itself.

Speed: vectors are real question embeddings, not random ones. Every question of the five data sets is
encoded once (about 55k); larger sets add paraphrase-like copies (a real vector plus Gaussian noise
scaled to cosine 0.80-0.95 with it) and mixtures (two real vectors blended 55-90% / 45-10%, plus noise),
all renormalised. Queries are fresh noisy copies of real questions; recall@10 is against exact search.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import CACHE, RESULTS, datasets_dir, load_results, machine, save_results

log = logging.getLogger("benchmarks.retrieval")

QUALITY_DATASETS = ("banking77", "clinc150")
SIZES = (10_000, 100_000, 1_000_000)
KINDS = ("flat", "hnsw")
PARTS = ("quality", "speed")
TARGETS = {"banking77": {"answer_at_1": 0.92}, "clinc150": {"answer_at_1": 0.93, "coverage_at_95_precision": 0.85}}


# -- quality ------------------------------------------------------------------------------------
def quality_splits(name: str):
    """(Q&A records, query texts, query intents) as the issue defines them."""
    from training.data import load_dataset, stratified_split
    from training.qa_data import records_from_examples

    root = datasets_dir()
    if name == "banking77":
        examples = load_dataset([root / "banking77" / "train.csv"])
        train, held = stratified_split(examples, 0.1, seed=13)
        return records_from_examples(train, "banking77-train"), held
    if name == "clinc150":
        path = root / "clinc150" / "data_full_train_val.json"
        return (records_from_examples(load_dataset([f"{path}@train"]), "clinc150-train"),
                load_dataset([f"{path}@val,oos_val"]))
    raise SystemExit(f"unknown data set {name}")


def evaluate_variants(index, queries, prefix: str, k: int = 10) -> dict[str, Any]:
    from retrieval.evaluation import evaluate_retrieval

    known = {r.intent for r in index.records.values()}
    started = time.perf_counter()
    vectors = index.embedder.encode([q.text for q in queries])
    encode_seconds = time.perf_counter() - started
    out = {}
    for hybrid in (False, True):
        results = index.search_vectors([q.text for q in queries], vectors, k, hybrid=hybrid)
        metrics = evaluate_retrieval(results, [q.intent for q in queries], known)
        metrics["query_encode_seconds"] = round(encode_seconds, 2)
        out[f"{prefix}{'hybrid' if hybrid else 'dense'}"] = metrics
    return out


def run_quality(name: str, variant: str, args: argparse.Namespace) -> dict[str, Any]:
    from retrieval.config import RetrievalConfig
    from retrieval.embeddings import Embedder
    from retrieval.finetune import finetune_embedder
    from retrieval.qa_index import QAIndex

    records, queries = quality_splits(name)
    config = RetrievalConfig(device=args.device)
    embedder = Embedder(config.model, config.device, config.batch_size)
    extra: dict[str, Any] = {}
    if variant == "finetuned":
        started = time.perf_counter()
        extra["finetune"] = finetune_embedder(embedder, records, config.finetune)
        extra["finetune"]["seconds"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    index = QAIndex.build(records, config, embedder)
    build_seconds = time.perf_counter() - started
    out = evaluate_variants(index, queries, "finetuned_" if variant == "finetuned" else "")
    for metrics in out.values():
        metrics.update(build_seconds=round(build_seconds, 1), records=len(records), entries=len(index), **extra)
    return out


# -- speed --------------------------------------------------------------------------------------
def all_questions() -> list[str]:
    """Every distinct question text of the five data sets."""
    from training.data import load_dataset

    root = datasets_dir()
    specs = [root / "banking77" / "train.csv", f"{root / 'clinc150' / 'data_full_train_val.json'}@train,val,oos_train,oos_val",
             root / "snips" / "train", root / "snips" / "dev", root / "atis" / "train", root / "atis" / "dev",
             f"{root / 'nlupp' / 'banking'}@0-9", f"{root / 'nlupp' / 'hotels'}@0-9"]
    texts = []
    for spec in specs:
        try:
            texts += [e.text for e in load_dataset([spec])]
        except Exception as exc:  # noqa: BLE001 - a missing optional set only shrinks the pool
            log.warning("skipping %s: %s", spec, exc)
    return sorted(set(texts))


def real_vectors(args: argparse.Namespace) -> tuple[np.ndarray, dict[str, Any]]:
    """Embeddings of every real question (cached), and the encode throughput measured on them."""
    cache = CACHE / "retrieval" / "real_vectors.npy"
    meta_path = cache.with_suffix(".json")
    if cache.is_file() and meta_path.is_file() and not args.force:
        return np.load(cache), json.loads(meta_path.read_text())
    from retrieval.embeddings import Embedder

    texts = all_questions()
    embedder = Embedder("all-MiniLM-L6-v2", args.device)
    embedder.encode(texts[:256])  # warm-up
    started = time.perf_counter()
    vectors = embedder.encode(texts)
    seconds = time.perf_counter() - started
    meta = {"questions": len(texts), "encode_seconds": round(seconds, 1),
            "encode_questions_per_second": round(len(texts) / seconds, 1), "device": embedder.device}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    meta_path.write_text(json.dumps(meta))
    return vectors, meta


def noisy(vectors: np.ndarray, rng: np.random.Generator, low: float = 0.80, high: float = 0.95) -> np.ndarray:
    """Copies at a cosine drawn from [low, high] to their originals: v·c + u·sqrt(1-c²), u ⟂ v random."""
    cos = rng.uniform(low, high, size=(len(vectors), 1)).astype(np.float32)
    noise = rng.standard_normal(vectors.shape).astype(np.float32)
    noise -= (noise * vectors).sum(1, keepdims=True) * vectors
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    out = vectors * cos + noise * np.sqrt(1 - cos**2)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def synthetic_corpus(real: np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` vectors: the real ones first, then half noisy copies and half noisy mixtures of them."""
    rng = np.random.default_rng(seed)
    parts = [real[:size]]
    missing = size - len(parts[0])
    copies = missing // 2
    if copies:
        parts.append(noisy(real[rng.integers(0, len(real), copies)], rng))
    mixes = missing - copies
    if mixes:
        a, b = real[rng.integers(0, len(real), mixes)], real[rng.integers(0, len(real), mixes)]
        w = rng.uniform(0.55, 0.9, size=(mixes, 1)).astype(np.float32)
        blend = a * w + b * (1 - w)
        parts.append(noisy(blend / np.linalg.norm(blend, axis=1, keepdims=True), rng, 0.85, 0.97))
    return np.ascontiguousarray(np.concatenate(parts).astype(np.float32))


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def run_speed_size(size: int, kind: str, real: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    import faiss

    from retrieval.config import RetrievalConfig
    from retrieval.index import create_vector_index

    corpus = synthetic_corpus(real, size, seed=size)
    rng = np.random.default_rng(7)
    queries = noisy(real[rng.integers(0, len(real), args.queries)], rng, 0.85, 0.97)
    exact = faiss.IndexFlatIP(corpus.shape[1])
    exact.add(corpus)
    _, truth = exact.search(queries, 10)
    del exact

    config = RetrievalConfig(device=args.device, index_type=kind)
    index = create_vector_index(kind, corpus.shape[1], config, size)
    started = time.perf_counter()
    index.initialise(corpus if len(corpus) <= 200_000 else corpus[rng.choice(len(corpus), 200_000, replace=False)])
    index.add(corpus, np.arange(size, dtype=np.int64))
    build = time.perf_counter() - started
    _, found = index.search(queries, 10)
    recall = float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))
    single = []
    for row in range(min(len(queries), args.single_runs)):
        q = queries[row : row + 1]
        t = time.perf_counter()
        index.search(q, 10)
        single.append((time.perf_counter() - t) * 1000)
    batched = []
    for start in range(0, len(queries) - 255, 256):
        t = time.perf_counter()
        index.search(queries[start : start + 256], 10)
        batched.append((time.perf_counter() - t) * 1000)
    p50, p99 = percentiles(single)
    b50, b99 = percentiles(batched)
    entry = {
        "records": size, "index_type": kind, "build_seconds": round(build, 2),
        "index_bytes": index.memory_bytes(), "recall_at_10": round(recall, 4),
        "single_p50_ms": round(p50, 3), "single_p99_ms": round(p99, 3),
        "batch256_p50_ms": round(b50, 2), "batch256_p99_ms": round(b99, 2),
        "batch256_queries_per_second": round(256 / (statistics.median(batched) / 1000), 1),
        "device": "cuda" if index.gpu.enabled else "cpu", "faiss_threads": faiss.omp_get_max_threads(),
    }
    if kind == "hnsw":
        entry.update(m=config.hnsw.m, ef_construction=config.hnsw.ef_construction, ef_search=config.hnsw.ef_search)
    if kind == "ivf":
        entry.update(nprobe=config.ivf.nprobe)
    return entry


# -- report -------------------------------------------------------------------------------------
def write_markdown(results: dict[str, Any], path: Path) -> None:
    m = results.get("machine", {})
    lines = ["# Retrieval benchmark", "",
             f"Machine: {m.get('hostname_kind', '?')}, {m.get('cpu', '?')}, {m.get('cores', '?')} cores, "
             f"torch {m.get('torch', '?')}, faiss {m.get('faiss', '?')}.",
             f"Command: `{results.get('command', 'python benchmarks/retrieval.py')}`.", ""]
    if results.get("quality"):
        lines += ["## Quality", "", "| data set | variant | answer@1 | recall@5 | MRR | coverage@95%P | threshold |",
                  "|---|---|---|---|---|---|---|"]
        for name, variants in results["quality"].items():
            for variant, q in variants.items():
                threshold = q.get("threshold_at_95_precision")
                lines.append(f"| {name} | {variant} | {q['answer_at_1']:.4f} | {q['recall_at_5']:.4f} | {q['mrr']:.4f} | "
                             f"{q['coverage_at_95_precision']:.4f} | {'—' if threshold is None else f'{threshold:.3f}'} |")
        lines += ["", "Targets:", ""]
        for name, targets in TARGETS.items():
            variants = results["quality"].get(name, {})
            for key, target in targets.items():
                if variants:
                    best_variant, best = max(((v, q[key]) for v, q in variants.items()), key=lambda x: x[1])
                    state = "met" if best >= target else f"short by {target - best:.4f}"
                    lines.append(f"- {name} {key} ≥ {target}: best {best:.4f} ({best_variant}; {state})")
    speed = results.get("speed", {})
    if speed:
        lines += ["", "## Speed", ""]
        if speed.get("encode"):
            e = speed["encode"]
            lines.append(f"Encoding: {e['encode_questions_per_second']} questions/s ({e['questions']} real questions "
                         f"in {e['encode_seconds']} s, {e['device']}, batch 64).")
            lines.append("")
        lines += ["| records | index | build s | memory MB | recall@10 | single p50 ms | single p99 ms | "
                  "batch-256 p50 ms | batch-256 p99 ms |", "|---|---|---|---|---|---|---|---|---|"]
        for key in sorted((k for k in speed if k != "encode"), key=lambda k: (speed[k]["records"], k)):
            s = speed[key]
            lines.append(f"| {s['records']:,} | {s['index_type']} | {s['build_seconds']} | {s['index_bytes'] / 2**20:.0f} | "
                         f"{s['recall_at_10']:.4f} | {s['single_p50_ms']} | {s['single_p99_ms']} | {s['batch256_p50_ms']} | "
                         f"{s['batch256_p99_ms']} |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--datasets", default=",".join(QUALITY_DATASETS))
    parser.add_argument("--variants", default="base,finetuned")
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--queries", type=int, default=1024)
    parser.add_argument("--single-runs", type=int, default=1000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=RESULTS / "retrieval.json")
    parser.add_argument("--force", action="store_true", help="re-run parts already in the results file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy_logger in ("transformers", "sentence_transformers", "faiss.loader"):
        logging.getLogger(noisy_logger).setLevel(logging.WARNING)

    import faiss

    results = load_results(args.out)
    results.setdefault("quality", {})
    results.setdefault("speed", {})

    def stamp() -> None:
        results["machine"] = {**machine(), "faiss": faiss.__version__}
        results["command"] = "python " + " ".join(["benchmarks/retrieval.py"] + sys.argv[1:])

    def save() -> None:
        save_results(args.out, results)
        write_markdown(results, args.out.with_suffix(".md"))

    parts = [p for p in args.parts.split(",") if p]
    if "quality" in parts:
        for name in [d for d in args.datasets.split(",") if d]:
            for variant in [v for v in args.variants.split(",") if v]:
                done = results["quality"].get(name, {})
                key = "finetuned_dense" if variant == "finetuned" else "dense"
                if key in done and not args.force:
                    print(f"{name} {variant}: already measured, skipping (use --force)", flush=True)
                    continue
                print(f"{name} {variant}: running", flush=True)
                stamp()
                results["quality"].setdefault(name, {}).update(run_quality(name, variant, args))
                save()
                for k, v in results["quality"][name].items():
                    print(f"  {k}: answer@1 {v['answer_at_1']:.4f} mrr {v['mrr']:.4f} "
                          f"coverage@95 {v['coverage_at_95_precision']:.4f}", flush=True)
    if "speed" in parts:
        real, encode = real_vectors(args)
        results["speed"]["encode"] = encode
        for size in [int(s) for s in args.sizes.split(",") if s]:
            for kind in [k for k in args.kinds.split(",") if k]:
                key = f"{kind}_{size}"
                if key in results["speed"] and not args.force:
                    print(f"speed {key}: already measured, skipping (use --force)", flush=True)
                    continue
                print(f"speed {key}: running", flush=True)
                stamp()
                results["speed"][key] = run_speed_size(size, kind, real, args)
                save()
                print(f"  {results['speed'][key]}", flush=True)
    save()


if __name__ == "__main__":
    main()
