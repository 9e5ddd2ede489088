"""The out-of-scope neighbour detector's maths (nlu/neighbours.py): similarity to the nearest training vectors,
the per-intent sample, and the threshold that keeps a share of the dev scores."""

from __future__ import annotations

import numpy as np
import pytest

from csbot.thresholds import acceptance_threshold
from nlu.neighbours import NeighbourBank, normalise, sample_per_intent


def test_scores_are_the_cosine_similarity_to_the_nearest_vectors():
    bank = NeighbourBank(np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]), k=1)
    scores = bank.scores(np.array([[3.0, 0.0], [0.0, -1.0], [1.0, 0.9]]))
    assert scores[0] == pytest.approx(1.0)                      # same direction as the first, whatever its length
    assert scores[1] == pytest.approx(0.0)                      # closest: the perpendicular one, not the opposite
    assert scores[2] == pytest.approx((1 + 0.9) / np.sqrt(2) / np.hypot(1, 0.9))


def test_k_averages_the_k_nearest_and_is_capped_by_the_bank_size():
    vectors = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    query = np.array([[1.0, 0.0]])
    assert NeighbourBank(vectors, k=2).scores(query)[0] == pytest.approx((1.0 + 0.8) / 2)
    assert NeighbourBank(vectors, k=10).k == 3
    assert NeighbourBank(vectors, k=10).scores(query)[0] == pytest.approx((1.0 + 0.8 + 0.0) / 3)


def test_a_message_far_from_every_intent_scores_below_the_in_scope_ones():
    rng = np.random.default_rng(0)
    centres = normalise(rng.normal(size=(5, 32)))
    train = np.concatenate([c + 0.1 * rng.normal(size=(40, 32)) for c in centres])
    dev = np.concatenate([c + 0.1 * rng.normal(size=(20, 32)) for c in centres])
    far = rng.normal(size=(50, 32))
    bank = NeighbourBank(train)
    threshold = acceptance_threshold(bank.scores(dev), 0.97)
    assert (bank.scores(dev) >= threshold).mean() >= 0.97
    assert (bank.scores(far) < threshold).mean() > 0.9


def test_the_sample_keeps_at_most_n_per_intent_reproducibly():
    intents = ["a"] * 10 + ["b"] * 3 + ["a"] * 5
    rows = sample_per_intent(intents, 4, seed=1)
    assert sorted(rows.tolist()) == rows.tolist()
    assert [intents[i] for i in rows].count("a") == 4 and [intents[i] for i in rows].count("b") == 3
    assert rows.tolist() == sample_per_intent(intents, 4, seed=1).tolist()
    assert len(sample_per_intent(intents, 100)) == len(intents)


def test_the_bank_round_trips_through_its_file_and_refuses_a_bad_one(tmp_path):
    bank = NeighbourBank(np.array([[3.0, 4.0], [1.0, 0.0]]), k=2)
    bank.save(tmp_path)
    loaded = NeighbourBank.load(tmp_path, k=2)
    np.testing.assert_allclose(loaded.vectors, [[0.6, 0.8], [1.0, 0.0]], atol=1e-3)
    assert loaded.k == 2
    np.save(tmp_path / "neighbours.npy", np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="2-D"):
        NeighbourBank.load(tmp_path)
    with pytest.raises(ValueError, match="size 3"):
        bank.scores(np.ones((1, 3)))
