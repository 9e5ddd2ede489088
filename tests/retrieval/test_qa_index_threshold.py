"""The Q&A index chooses its own answer threshold at build, from held-out in-scope questions only.

Checked against a brute-force oracle (every question scored against its siblings with numpy), for records
with intents and for records keyed by answer text; the manifest round trip, an index saved before (no
threshold fields: the configured one), too few pairs (the configured one, said so), the sampled and batched
search of a big index, recalibration on add, and the domain's ``thresholds.retrieval`` still winning in a turn.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from test_qa_index import TrigramEmbedder

from csbot.errors import ArtefactError
from csbot.thresholds import precision_threshold
from retrieval import thresholds
from retrieval.config import RetrievalConfig
from retrieval.qa_index import MANIFEST, QAIndex
from retrieval.records import QARecord

PARAPHRASES = {
    "track_order": ["where is my order", "track my parcel please", "has my package shipped yet",
                    "when will my order arrive", "order status please", "where is my delivery right now"],
    "reset_password": ["how do i reset my password", "forgot my password", "i cannot log in to my account",
                       "password reset link not working", "change my login password", "locked out of my account"],
    "refund": ["i want a refund", "how do i get my money back", "refund for a broken item",
               "can i return this for a refund", "when will my refund arrive", "refund status please"],
    "shipping_abroad": ["do you ship abroad", "can you deliver to canada", "international shipping costs",
                        "do you ship to norway", "shipping outside the eu", "delivery to another country"],
    "payment": ["can i pay with paypal", "which cards do you accept", "pay by bank transfer",
                "is apple pay accepted", "payment methods please", "can i pay in instalments"],
    "opening_hours": ["when are you open", "what are your opening hours", "is the shop open on sunday",
                      "customer service hours", "what time do you close", "are you open on holidays"],
}
FIELDS = ("threshold", "threshold_method", "threshold_pairs", "threshold_target")


def config(**overrides) -> RetrievalConfig:
    return RetrievalConfig(**{"device": "cpu", "merge_threshold": 1.01, **overrides})


def make_records(with_intents: bool = True) -> list[QARecord]:
    """36 questions, six per topic, a topic's questions sharing one answer (labelled with the topic's intent or not)."""
    out = []
    for intent, questions in PARAPHRASES.items():
        for n, question in enumerate(questions):
            out.append(QARecord(f"{intent}-{n}", question, f"the {intent} answer", intent=intent if with_intents else None))
    return out


def oracle_scores(records: list[QARecord], embedder, with_intents: bool) -> np.ndarray:
    """Each question's best cosine to another record with the same intent (or answer), by brute force."""
    vectors = embedder.encode([r.question for r in records])
    keys = [r.answer for r in records]
    sims = vectors @ vectors.T
    return np.array([max(sims[i, j] for j in range(len(records)) if j != i and keys[j] == keys[i])
                     for i in range(len(records))])


@pytest.mark.parametrize("with_intents", [True, False])
def test_the_held_out_threshold_accepts_the_target_share_of_in_scope_questions(with_intents):
    records, embedder = make_records(with_intents), TrigramEmbedder()
    cfg = config(accept_rate=0.9, threshold=0.6, hybrid={"enabled": False}, answer_precision=0)
    index = QAIndex.build(records, cfg, embedder=embedder)
    choice = index.threshold_choice
    assert choice is not None and (choice.method, choice.pairs, choice.target) == ("held_out", 36, 0.9)
    scores = oracle_scores(records, embedder, with_intents)
    assert np.isclose(scores, choice.value, atol=1e-5).any()  # a score of one of the pairs
    assert (scores >= choice.value - 1e-5).mean() >= 0.9
    higher = scores[scores > choice.value + 1e-5]
    assert (scores >= higher.min() - 1e-6).mean() < 0.9  # the highest threshold that keeps the target
    assert index.threshold == choice.value != cfg.threshold
    assert all(r.threshold == choice.value for r in index.search(["where is my order", "zzz"]))


def oracle_top_hits(records: list[QARecord], embedder) -> tuple[np.ndarray, np.ndarray]:
    """Each question's best cosine to any other record, and whether that record has the same answer."""
    vectors = embedder.encode([r.question for r in records])
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    best = sims.argmax(1)
    right = np.array([records[j].answer == records[i].answer for i, j in enumerate(best)])
    return sims.max(1), right


def test_the_precision_rule_raises_the_threshold_until_the_top_hits_given_are_right_often_enough():
    records, embedder = make_records(), TrigramEmbedder()  # trigrams blur the topics: top hits right ~69%
    base = config(accept_rate=0.9, hybrid={"enabled": False})
    acceptance = QAIndex.build(records, base.model_copy(update={"answer_precision": 0.0}), embedder=embedder)
    strict = QAIndex.build(records, base.model_copy(update={"answer_precision": 0.75}), embedder=embedder)
    top, right = oracle_top_hits(records, embedder)
    choice = strict.threshold_choice
    assert choice.precision == 0.75 and choice.top_hit_accuracy == pytest.approx(right.mean(), abs=1e-4)
    assert right.mean() < 0.75 and choice.value > acceptance.threshold + 0.05  # the precision rule acts
    assert choice.value == pytest.approx(precision_threshold(top, right, 0.75, min_examples=1), abs=1e-5)
    given = top >= choice.value - 1e-5
    assert given.any() and right[given].mean() >= 0.75
    lower = top[top < choice.value - 1e-5].max()  # one step lower: the answers given are wrong too often
    assert right[top >= lower - 1e-6].mean() < 0.75
    assert "right 75% of the time" in choice.describe()


def test_an_index_whose_top_hits_are_never_right_enough_answers_nothing():
    records, embedder = make_records(), TrigramEmbedder()
    index = QAIndex.build(records, config(hybrid={"enabled": False}, answer_precision=0.99), embedder=embedder)
    top, _ = oracle_top_hits(records, embedder)
    assert index.threshold > top.max()  # no held-out question would have been answered
    assert index.search(["has my order shipped yet"])[0].threshold == index.threshold


def test_siblings_scored_one_by_one_match_the_search(monkeypatch):
    index = QAIndex.build(make_records(), config(), embedder=TrigramEmbedder())  # hybrid scoring on
    labels = sorted(index.records)
    searched = thresholds.held_out_scores(index, labels)
    calls = []
    original = thresholds._best_sibling_score
    monkeypatch.setattr(thresholds, "_best_sibling_score", lambda *a: calls.append(a) or original(*a))
    monkeypatch.setattr(thresholds, "DEPTH", 0)  # only the top hit, mostly the question itself: scored directly
    direct = thresholds.held_out_scores(index, labels)
    assert len(calls) > len(labels) // 2
    np.testing.assert_allclose(direct, searched, atol=1e-5)


def test_a_big_index_is_sampled_with_a_seed_and_searched_in_batches(monkeypatch):
    monkeypatch.setattr(thresholds, "BATCH", 4)
    batches = []
    original = QAIndex.search_vectors
    monkeypatch.setattr(QAIndex, "search_vectors", lambda self, q, *a, **kw: batches.append(len(q)) or original(self, q, *a, **kw))
    cfg = config(calibration_queries=10, calibration_min_pairs=5)
    first = QAIndex.build(make_records(), cfg, embedder=TrigramEmbedder())
    assert batches == [4, 4, 2]
    second = QAIndex.build(make_records(), cfg, embedder=TrigramEmbedder())
    assert first.threshold_choice == second.threshold_choice
    assert first.threshold_choice.pairs == 10 and first.threshold_choice.method == "held_out"


def test_too_few_pairs_keep_the_configured_threshold(tmp_path):
    records = make_records()[:8]  # six of one intent, two of another: 8 pairs
    index = QAIndex.build(records, config(threshold=0.42), embedder=TrigramEmbedder())
    assert index.threshold_choice == thresholds.ThresholdChoice(0.42, "config", 8, 0.97)
    assert index.threshold == 0.42 and index.search("where is my order")[0].threshold == 0.42
    assert "from the configuration" in index.threshold_choice.describe()
    index.save(tmp_path / "idx")
    loaded = QAIndex.load(tmp_path / "idx", config(threshold=0.5), embedder=TrigramEmbedder())
    assert loaded.threshold_choice.method == "config" and loaded.threshold == 0.5  # the configuration of now


def test_adding_records_chooses_the_threshold_again():
    records = make_records()
    index = QAIndex.build(records[:8], config(), embedder=TrigramEmbedder())
    assert index.threshold_choice.method == "config"
    index.add(records[8:])
    assert index.threshold_choice.method == "held_out" and index.threshold_choice.pairs == 36
    index.remove([r.id for r in records[8:]])
    assert index.threshold_choice.method == "config" and index.threshold_choice.pairs == 8


def test_the_choice_round_trips_through_the_manifest(tmp_path):
    index = QAIndex.build(make_records(), config(), embedder=TrigramEmbedder())
    index.save(tmp_path / "idx")
    manifest = json.loads((tmp_path / "idx" / MANIFEST).read_text())
    choice = index.threshold_choice
    assert {k: manifest[k] for k in FIELDS} == {"threshold": choice.value, "threshold_method": "held_out",
                                                "threshold_pairs": 36, "threshold_target": 0.97}
    loaded = QAIndex.load(tmp_path / "idx", config(threshold=0.1), embedder=TrigramEmbedder())
    assert loaded.threshold_choice == choice and loaded.threshold == choice.value
    assert loaded.search("where is my order")[0].threshold == choice.value
    stats = loaded.stats()
    assert (stats["threshold"], stats["threshold_method"], stats["threshold_pairs"]) == (choice.value, "held_out", 36)


def test_an_index_saved_before_loads_with_the_configured_threshold(tmp_path):
    QAIndex.build(make_records(), config(), embedder=TrigramEmbedder()).save(tmp_path / "idx")
    path = tmp_path / "idx" / MANIFEST
    manifest = json.loads(path.read_text())
    for key in FIELDS:
        del manifest[key]
    path.write_text(json.dumps(manifest))
    loaded = QAIndex.load(tmp_path / "idx", config(threshold=0.37), embedder=TrigramEmbedder())
    assert loaded.threshold_choice is None and loaded.threshold == 0.37
    assert loaded.search("where is my order")[0].threshold == 0.37
    assert loaded.stats()["threshold_method"] == "config"


@pytest.mark.parametrize(("field", "value"), [("threshold_method", "guessed"), ("threshold", "high"),
                                              ("threshold_target", 1.5), ("threshold_pairs", -1)])
def test_a_malformed_threshold_field_is_refused(tmp_path, field, value):
    QAIndex.build(make_records(), config(), embedder=TrigramEmbedder()).save(tmp_path / "idx")
    path = tmp_path / "idx" / MANIFEST
    path.write_text(json.dumps({**json.loads(path.read_text()), field: value}))
    with pytest.raises(ArtefactError, match=f"invalid manifest: {field}"):
        QAIndex.load(tmp_path / "idx", config(), embedder=TrigramEmbedder())


@pytest.mark.parametrize("rate", [0, -0.1, 1.01])
def test_the_accept_rate_is_a_share(rate):
    with pytest.raises(ValidationError, match="accept_rate"):
        RetrievalConfig(accept_rate=rate)
    assert RetrievalConfig(accept_rate=1).accept_rate == 1


def test_the_domains_threshold_still_overrides_the_indexs():
    from bot.dialogue import DialogueManager
    from bot.domain import load_domain
    from bot.messages import Message
    from bot.sessions import MemorySessionStore
    from bot.understanding import IndexRetriever, Understander
    from nlu.schema import IntentScore, ParseResult

    class OutOfScope(Understander):
        """Every message out of scope: straight to the Q&A index."""

        async def parse(self, text: str) -> ParseResult:
            top = IntentScore("chitchat", 0.1)
            return ParseResult(text, top, [top], [], True)

    index = QAIndex.build(make_records(), config(hybrid={"enabled": False}), embedder=TrigramEmbedder())
    chosen = index.threshold
    assert index.threshold_choice.method == "held_out"
    query = "where is my order"  # an exact question: a score of 1, above the index's threshold
    domain_file = Path(__file__).resolve().parents[2] / "configs" / "demo" / "domain.yml"

    async def turn(domain):
        manager = DialogueManager(domain, understander=OutOfScope(), store=MemorySessionStore(),
                                  retriever=IndexRetriever(index))
        return await manager.handle(Message("s", query, "test"))

    own = asyncio.run(turn(load_domain(domain_file)))
    assert own.source == "retrieve" and "the track_order answer" in own.text
    assert f"threshold {chosen:.4f} (index)" in own.details.decision.note
    strict = load_domain(domain_file)
    strict.thresholds.retrieval = 1.5
    refused = asyncio.run(turn(strict))
    assert refused.source == "fallback" and "threshold 1.5000 (domain)" in refused.details.decision.note


def test_csbot_index_build_and_stats_report_the_threshold(tmp_path, monkeypatch, capsys):
    from bot.cli import main

    monkeypatch.setattr("retrieval.embeddings.Embedder", lambda *a, **kw: TrigramEmbedder())
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in make_records()), encoding="utf-8")
    out = tmp_path / "idx"
    assert main(["index", "build", "--qa", str(qa), "--out", str(out), "--device", "cpu", "--accept-rate", "0.9"]) == 0
    printed = capsys.readouterr().out
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["threshold_method"] == "held_out" and manifest["threshold_target"] == 0.9
    assert f"answer threshold {manifest['threshold']:.4f}, chosen on 36 held-out in-scope questions to accept 90%" in printed
    assert main(["index", "stats", "--index", str(out)]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert {k: stats[k] for k in FIELDS} == {k: manifest[k] for k in FIELDS}


def test_a_catch_all_intent_whose_records_answer_different_things_gives_no_pairs():
    """Records of one intent with different answers are not each other's right answer: with no shared answer text
    there is nothing to hold out, so the configured threshold stays (a catch-all intent cannot drag it down)."""
    records = [QARecord(f"q{n}", question, f"answer {n}", intent="shop_question")
               for n, question in enumerate(q for questions in PARAPHRASES.values() for q in questions)]
    index = QAIndex.build(records, config(accept_rate=0.9, threshold=0.6, hybrid={"enabled": False}),
                          embedder=TrigramEmbedder())
    assert index.threshold_choice is not None
    assert (index.threshold_choice.method, index.threshold_choice.pairs) == ("config", 0)
    assert index.threshold == 0.6
