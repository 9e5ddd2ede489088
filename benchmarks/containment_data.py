"""The bots the containment benchmark builds, from the public data sets: splits, out-of-scope messages, files.

Each bot is a customer-support bot as a team would set one up: its in-scope messages split into what it is
trained on (``csbot train`` defaults, which hold out their own dev split) and held-back messages it never
saw; one template per intent; a Q&A index of the training messages (each record's answer is its intent's
template, its intent the gold one). The out-of-scope messages are everyday requests from unrelated data sets
(CLINC150's out-of-scope utterances and its domains that have nothing to do with banking, SNIPS, ATIS),
about one for every two held-back in-scope messages; no out-of-scope message is ever given to training.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path

#: CLINC150 domains far from banking (its banking and credit-card domains are in scope for a bank, and
#: ``work`` holds payroll and direct deposits).
UNRELATED_CLINC_DOMAINS = ("kitchen_and_dining", "home", "auto_and_commute", "travel", "utility", "small_talk")
#: Intents of those domains a bank's customers do ask about.
BANKING_LIKE = {"exchange_rate", "travel_notification", "international_visa", "timezone"}


@dataclass
class BotData:
    """One bot's messages: (text, intent) for training and held back, and the out-of-scope messages."""

    name: str
    train: list[tuple[str, str]]
    held: list[tuple[str, str]]
    oos: list[str]

    @property
    def intents(self) -> list[str]:
        return sorted({intent for _, intent in self.train})


def _split(rows: list[tuple[str, str]], held_share: float, seed: int) -> tuple[list, list]:
    """Per intent, ``held_share`` of the messages held back (at least one), the rest for training."""
    rng = random.Random(seed)
    by_intent: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        by_intent.setdefault(row[1], []).append(row)
    train, held = [], []
    for intent in sorted(by_intent):
        items = by_intent[intent][:]
        rng.shuffle(items)
        k = max(1, round(len(items) * held_share))
        held += items[:k]
        train += items[k:]
    return train, held


def banking77(root: Path, seed: int = 7) -> tuple[list, list]:
    with open(root / "banking77" / "train.csv", encoding="utf-8", newline="") as f:
        rows = [(r["text"], r["category"]) for r in csv.DictReader(f)]
    return _split(rows, 0.15, seed)


def clinc_banking(root: Path) -> tuple[list, list]:
    """CLINC150's banking and credit-card domains (30 intents): its train split to train on, val held back."""
    data = json.loads((root / "clinc150" / "data_full_train_val.json").read_text(encoding="utf-8"))
    domains = json.loads((root / "clinc150" / "domains.json").read_text(encoding="utf-8"))
    keep = set(domains["banking"]) | set(domains["credit_cards"])
    train = [(t, i) for t, i in data["train"] if i in keep]
    held = [(t, i) for t, i in data["val"] if i in keep]
    return train, held


def out_of_scope_pool(root: Path) -> list[str]:
    """Everyday messages from other domains: CLINC150's out-of-scope and unrelated domains, SNIPS, ATIS."""
    data = json.loads((root / "clinc150" / "data_full_train_val.json").read_text(encoding="utf-8"))
    domains = json.loads((root / "clinc150" / "domains.json").read_text(encoding="utf-8"))
    unrelated = {i for d in UNRELATED_CLINC_DOMAINS for i in domains[d]} - BANKING_LIKE
    pool = [t for t, _ in data["oos_train"] + data["oos_val"]]
    pool += [t for t, i in data["val"] if i in unrelated]
    for name in ("snips", "atis"):
        path = root / name / "dev" / "seq.in"
        if path.is_file():
            pool += [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return sorted(set(pool))


def build(name: str, root: Path, seed: int = 11) -> BotData:
    """The named bot's data (``banking77`` or ``clinc_banking``), with its out-of-scope sample."""
    makers = {"banking77": banking77, "clinc_banking": clinc_banking}
    if name not in makers:
        raise SystemExit(f"unknown bot {name!r}: use {', '.join(makers)}")
    train, held = makers[name](root)
    pool = out_of_scope_pool(root)
    rng = random.Random(seed)
    oos = rng.sample(pool, min(len(pool), len(held) // 2))
    return BotData(name, train, held, oos)


def template_text(intent: str) -> str:
    """The one answer of an intent (what the bot says when it recognises it)."""
    return f"[answer for {intent.replace('_', ' ')}]"


def write_files(bot: BotData, out: Path) -> dict[str, Path]:
    """The bot's training CSV, held-back CSV, out-of-scope list, Q&A CSV, domain and config, in ``out``."""
    import yaml

    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("train.csv", "held.csv", "oos.txt", "qa.csv", "domain.yml", "config.yml")}
    for key, rows in (("train.csv", bot.train), ("held.csv", bot.held)):
        with open(paths[key], "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "category"])
            writer.writerows(rows)
    paths["oos.txt"].write_text("\n".join(bot.oos) + "\n", encoding="utf-8")
    with open(paths["qa.csv"], "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "question", "answer", "intent"])  # ids by row: the data sets repeat some texts
        writer.writerows((f"{bot.name}-{row}", text, template_text(intent), intent)
                         for row, (text, intent) in enumerate(bot.train))
    domain = {
        "version": 1,
        "intents": {intent: {} for intent in bot.intents},
        "templates": {intent: [{"text": template_text(intent)}] for intent in bot.intents},
    }
    paths["domain.yml"].write_text(yaml.safe_dump(domain, sort_keys=True), encoding="utf-8")
    config = {
        "bot": {"name": f"{bot.name} bot", "domain": str(paths["domain.yml"]), "nlu_data": [str(paths["train.csv"])],
                "qa_data": [str(paths["qa.csv"])], "model_dir": str(out / "model"), "index_dir": str(out / "index")},
        "transcripts": {"path": str(out / "transcripts.jsonl")},
    }
    paths["config.yml"].write_text(yaml.safe_dump(config, sort_keys=True), encoding="utf-8")
    return paths


__all__ = ["BotData", "build", "out_of_scope_pool", "template_text", "write_files"]
