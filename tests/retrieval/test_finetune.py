"""Contrastive fine-tuning: training pairs grouped by answer, batches of distinct answers, and a real (tiny) run."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from csbot.errors import RetrievalError
from retrieval.config import FinetuneConfig
from retrieval.finetune import (
    distinct_answer_batches,
    finetune_embedder,
    training_pairs,
)
from retrieval.records import Provenance, QARecord

ANSWERS = {
    "Track it on the Orders page.": ["where is my order", "track my parcel", "has my package shipped",
                                     "order status please", "when will my order arrive"],
    "Use the Forgot password link.": ["reset my password", "I forgot my password", "cannot log in",
                                      "password reset link", "change my password"],
    "9 to 5 on weekdays.": ["opening hours", "when are you open", "are you open on sunday",
                            "what time do you close", "business hours"],
}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The tiny model gains nothing from threads; on a busy machine their barriers cost seconds a step."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def faq_records(per_question=1):
    records = []
    for answer, questions in ANSWERS.items():
        for copy in range(per_question):
            for question in questions:
                text = question if copy == 0 else f"{question} ({copy})"
                records.append(QARecord.create(text, answer))
    return records


def test_training_pairs_group_questions_by_answer():
    records = [
        QARecord("1", "where is my order", "A", merged=[Provenance("1b", "where is my ORDER?", "A2")]),
        QARecord("2", "track my parcel", "A"),
        QARecord("3", "opening hours", "B"),
    ]
    pairs = training_pairs(records, seed=0)
    assert len(pairs) == 4
    by_anchor = {anchor: (positive, key) for anchor, positive, key in pairs}
    # merged questions count as questions of their entry's answer
    assert set(by_anchor) == {"where is my order", "where is my ORDER?", "track my parcel", "opening hours"}
    group_a = {"where is my order", "where is my ORDER?", "track my parcel"}
    for anchor in group_a:
        positive, key = by_anchor[anchor]
        assert key == "A" and positive in group_a and positive != anchor
    # a question whose answer no other question shares is paired with the answer text itself
    assert by_anchor["opening hours"] == ("B", "B")


def test_training_pairs_are_seeded():
    records = faq_records()
    assert training_pairs(records, 3) == training_pairs(records, 3)
    assert len(training_pairs(records, 3)) == len(records)


def check_batches(pairs, batches, batch_size):
    seen = [i for batch in batches for i in batch]
    assert len(seen) == len(set(seen)) and set(seen) <= set(range(len(pairs)))
    for batch in batches:
        keys = [pairs[i][2] for i in batch]
        assert len(set(keys)) == len(keys), "two pairs of one answer in a batch"
        assert 1 < len(batch) <= batch_size
    return seen


@pytest.mark.parametrize("seed", range(5))
def test_distinct_answer_batches(seed):
    pairs = [(f"q{i}", f"p{i}", f"answer {i % 7}") for i in range(100)]
    batches = distinct_answer_batches(pairs, 4, seed)
    seen = check_batches(pairs, batches, 4)
    assert len(seen) >= 90  # only leftovers that cannot form a batch are dropped
    assert batches == distinct_answer_batches(pairs, 4, seed)


def test_batches_never_exceed_the_distinct_answers():
    pairs = training_pairs(faq_records(), 0)
    batches = distinct_answer_batches(pairs, 4, 0)
    check_batches(pairs, batches, 3)


@pytest.mark.parametrize("seed", range(5))
def test_one_dominant_answer_gives_no_one_pair_batches(seed):
    pairs = [("q", "p", "a")] * 40 + [("q", "p", "b")] * 2 + [("q", "p", "c")] * 2
    random.Random(seed).shuffle(pairs)
    batches = distinct_answer_batches(pairs, 4, seed)
    check_batches(pairs, batches, 4)
    assert Counter(pairs[i][2] for batch in batches for i in batch)["b"] == 2


def test_finetune_needs_two_answers(tiny_embedder):
    records = [QARecord.create(q, "same answer") for q in ("where is my order", "track my parcel")]
    with pytest.raises(RetrievalError, match="two different answers"):
        finetune_embedder(tiny_embedder, records, FinetuneConfig())


@pytest.fixture(scope="module")
def tiny_embedder(tiny_encoder_dir):
    from retrieval.embeddings import Embedder

    return Embedder(str(tiny_encoder_dir), device="cpu")


def test_finetune_a_tiny_encoder(tiny_embedder):
    import torch

    records = faq_records(per_question=2)
    assert len(records) == 30
    before = {name: p.detach().clone() for name, p in tiny_embedder.model.named_parameters()}
    vectors_before = tiny_embedder.encode(["where is my order"])
    calls = []
    result = finetune_embedder(tiny_embedder, records, FinetuneConfig(epochs=2, batch_size=4, learning_rate=1e-3),
                               progress=lambda step, total, loss: calls.append((step, total, loss)))
    assert result["steps"] > 0 and result["pairs"] == 30
    assert [c[0] for c in calls] == list(range(1, result["steps"] + 1))
    assert all(np.isfinite(c[2]) and c[2] > 0 for c in calls)
    assert np.isfinite(result["first_epoch_loss"]) and np.isfinite(result["last_epoch_loss"])
    changed = [name for name, p in tiny_embedder.model.named_parameters() if not torch.equal(p, before[name])]
    assert changed, "no weight changed"
    assert not tiny_embedder.model.training  # back in evaluation mode
    vectors = tiny_embedder.encode(["where is my order", "opening hours"])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vectors[0], vectors_before[0])


def test_a_finetuned_index_saves_and_loads_its_encoder(tiny_encoder_dir, tmp_path):
    from retrieval.config import RetrievalConfig
    from retrieval.embeddings import Embedder
    from retrieval.qa_index import QAIndex

    config = RetrievalConfig(model=str(tiny_encoder_dir), device="cpu", merge_threshold=1.01)
    embedder = Embedder(str(tiny_encoder_dir), device="cpu")
    records = faq_records()
    finetune_embedder(embedder, records, FinetuneConfig(epochs=1, batch_size=4, learning_rate=1e-3))
    index = QAIndex.build(records, config, embedder=embedder)
    index.finetuned = True
    out = index.save(tmp_path / "index")
    assert (out / "encoder").is_dir()
    loaded = QAIndex.load(out, config)
    assert loaded.finetuned and loaded.embedder is not embedder
    assert loaded.embedder.source == str((out / "encoder").resolve())
    queries = ["where is my order", "business hours", "reset my password"]
    before, after = index.search(queries), loaded.search(queries)
    assert [[h.record.id for h in r.hits] for r in before] == [[h.record.id for h in r.hits] for r in after]
    assert [r.top.score for r in after] == pytest.approx([r.top.score for r in before], abs=1e-4)
    # the base model gives other vectors: the saved encoder, not the base one, was loaded
    base = Embedder(str(tiny_encoder_dir), device="cpu")
    assert not np.allclose(base.encode(queries), loaded.embedder.encode(queries), atol=1e-4)
