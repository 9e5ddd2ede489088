"""Entity extractor benchmark: microseconds per message of each built-in extractor and of the whole pipeline.

    python benchmarks/entities.py            # writes benchmarks/results/entities.json and .md

Two sets of messages: (a) real chat messages (BANKING77 train texts and SNIPS train ``seq.in``, from
``$CSBOT_DATASETS`` or ``../shared/datasets``; a few hundred of each), where most messages hold no date or
amount and the cheap pre-filters decide; (b) messages that hold dates, times and amounts, where the parsing
libraries (dateparser, text2num, phonenumbers) run. Each message is timed alone (``perf_counter``) after a
warm-up pass; mean and 99th percentile are reported. Timing is only as quiet as the machine: the load average
is recorded with the numbers.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RESULTS, datasets_dir, machine, machine_line, now, save_results
from nlu.config import NLUConfig
from nlu.extractors import EntityPipeline
from nlu.schema import IntentScore, ParseResult

#: (b): what customers write when dates and amounts matter
WITH_ENTITIES = [
    "send 50 bucks to evan", "transfer fifty quid to my savings tomorrow", "I was charged €20 twice on 2026-11-30",
    "can you deliver it next monday after 3pm?", "pay $1,250.50 to the landlord on the 1st of december",
    "refund of twenty-one dollars please", "I need it in 2 days", "book a table for four at 7:30 pm on friday",
    "my card was charged 99 cents yesterday", "move 200 EUR to checking the day after tomorrow",
    "order AB-12345 should arrive by 24 dec", "call me on +44 20 7946 0958 tomorrow at noon",
    "I paid USD 75 three days ago for order 48213", "set a reminder for 10 o'clock in two weeks",
    "withdraw 1.5 million yen next week", "my email is jane.doe@example.com and the amount was £30",
]


def real_messages(limit: int, seed: int = 0) -> list[str]:
    """Up to ``limit`` BANKING77 texts and ``limit`` SNIPS utterances (a fixed random sample)."""
    root = datasets_dir()
    rng = random.Random(seed)
    out: list[str] = []
    banking = root / "banking77" / "train.csv"
    if banking.is_file():
        with banking.open(encoding="utf-8", newline="") as fh:
            texts = [row["text"] for row in csv.DictReader(fh)]
        out += rng.sample(texts, min(limit, len(texts)))
    snips = root / "snips" / "train" / "seq.in"
    if snips.is_file():
        lines = [line.strip() for line in snips.read_text(encoding="utf-8").splitlines() if line.strip()]
        out += rng.sample(lines, min(limit, len(lines)))
    return out


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"mean_us": round(statistics.fmean(ordered) * 1e6, 1), "p99_us": round(p99 * 1e6, 1),
            "max_us": round(ordered[-1] * 1e6, 1)}


def measure(pipeline: EntityPipeline, messages: list[str], repeats: int) -> dict[str, Any]:
    """Per extractor and for ``augment`` as a whole: mean and p99 microseconds per message."""
    when = datetime(2026, 12, 2, 10, 0)
    per: dict[str, list[float]] = {x.name: [] for x in pipeline.extractors}
    whole: list[float] = []
    found = 0
    for text in messages:  # warm-up: imports, caches
        pipeline.augment(ParseResult(text, IntentScore("x", 1.0), [], [], False), when)
    for _ in range(repeats):
        for text in messages:
            for extractor in pipeline.extractors:
                started = time.perf_counter()
                extractor.extract(text, when)
                per[extractor.name].append(time.perf_counter() - started)
            parse = ParseResult(text, IntentScore("x", 1.0), [], [], False)
            started = time.perf_counter()
            out = pipeline.augment(parse, when)
            whole.append(time.perf_counter() - started)
            found += len(out.entities)
    return {"messages": len(messages), "repeats": repeats, "entities_per_message": round(found / len(whole), 3),
            "pipeline": _stats(whole), "extractors": {name: _stats(s) for name, s in per.items()}}


def markdown(results: dict[str, Any]) -> str:
    lines = ["# Entity extractors: speed per message", "",
             "Microseconds per message (mean / p99) of each built-in extractor alone and of "
             "`EntityPipeline.augment` (all of them, overlaps and synonyms). `python benchmarks/entities.py`.", "",
             machine_line(results), f"Load average while measuring: {results.get('load_average')}.", ""]
    sets = results["sets"]
    names = list(next(iter(sets.values()))["extractors"])
    lines.append("| extractor | " + " | ".join(f"{s} mean | {s} p99" for s in sets) + " |")
    lines.append("|---|" + "---:|---:|" * len(sets))
    for name in [*names, "pipeline"]:
        cells = []
        for data in sets.values():
            stats = data["pipeline"] if name == "pipeline" else data["extractors"][name]
            cells += [f"{stats['mean_us']:.1f}", f"{stats['p99_us']:.1f}"]
        lines.append(f"| {'**whole pipeline**' if name == 'pipeline' else name} | " + " | ".join(cells) + " |")
    lines.append("")
    for label, data in sets.items():
        lines.append(f"- {label}: {data['messages']} messages × {data['repeats']}, "
                     f"{data['entities_per_message']} entities per message")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=300, help="messages taken from each data set")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "entities.json")
    args = parser.parse_args(argv)
    pipeline = EntityPipeline.from_config(NLUConfig(), [])
    real = real_messages(args.limit)
    sets: dict[str, Any] = {}
    if real:
        sets["real chat messages"] = measure(pipeline, real, args.repeats)
    sets["dates and amounts"] = measure(pipeline, WITH_ENTITIES, args.repeats * 10)
    results = {"machine": machine(), "measured_at": now(), "load_average": [round(x, 2) for x in os.getloadavg()],
               "sets": sets}
    save_results(args.out, results)
    args.out.with_suffix(".md").write_text(markdown(results), encoding="utf-8")
    print(markdown(results))


if __name__ == "__main__":
    main()
