"""Vector index backends (flat, HNSW, IVF): search, tombstone removal, ids, save/load, compaction, CPU fallback."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from csbot.errors import ArtefactError, ConfigError, RetrievalError
from csbot.plugins import VECTOR_INDEXES
from retrieval.config import RetrievalConfig
from retrieval.index import choose_kind, create_vector_index, index_kinds

KINDS = ("flat", "hnsw", "ivf")
N, DIM = 2000, 32


def unit(rows, seed):
    vectors = np.random.default_rng(seed).standard_normal((rows, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    """Unit vectors under ids that are neither 0-based nor contiguous, so ids and positions differ."""
    return unit(N, 0), np.arange(N, dtype=np.int64) * 3 + 1000


def build(kind, data, **config):
    vectors, ids = data
    index = create_vector_index(kind, DIM, RetrievalConfig(device="cpu", **config), len(vectors))
    index.add(vectors, ids)
    return index


def self_hits(index, vectors, ids):
    """The share of ``vectors`` whose top hit is their own id."""
    _, found = index.search(vectors, 1)
    return float(np.mean(found[:, 0] == ids))


@pytest.fixture(params=KINDS)
def kind(request):
    return request.param


def test_self_search_finds_itself(kind, data):
    vectors, ids = data
    index = build(kind, data)
    assert index.kind == kind and index.size == N and index.deleted == 0
    scores, found = index.search(vectors[:300], 5)
    assert scores.shape == found.shape == (300, 5)
    assert np.mean(found[:, 0] == ids[:300]) >= (1.0 if kind == "flat" else 0.97)
    hit = found[:, 0] == ids[:300]
    assert np.allclose(scores[hit, 0], 1.0, atol=1e-4)  # cosine of a unit vector with itself
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first


def test_search_scores_are_cosines(kind, data):
    vectors, ids = data
    index = build(kind, data)
    queries = unit(20, 1)
    scores, found = index.search(queries, 3)
    position = {int(x): i for i, x in enumerate(ids)}
    for row in range(len(queries)):
        for score, label in zip(scores[row], found[row], strict=True):
            assert score == pytest.approx(float(vectors[position[int(label)]] @ queries[row]), abs=1e-4)


def test_remove_excludes_ids(kind, data):
    vectors, ids = data
    index = build(kind, data)
    gone = ids[::20]
    assert index.remove(list(gone) + [-5, 123456789]) == len(gone)  # unknown ids are ignored
    assert index.size == N - len(gone) and index.deleted == len(gone)
    assert int(gone[0]) not in index and int(ids[1]) in index
    _, found = index.search(vectors[::20], 10)
    assert not np.isin(found, gone).any()
    assert index.describe()["removed"] == len(gone)
    assert self_hits(index, vectors[1::20], ids[1::20]) >= (1.0 if kind == "flat" else 0.95)


def test_removing_every_vector_leaves_an_empty_searchable_index(kind, data):
    vectors, ids = data
    index = build(kind, data)
    index.remove(ids)
    assert index.size == 0
    scores, found = index.search(vectors[:2], 3)
    assert (found == -1).all() and np.isneginf(scores).all()


def test_duplicate_ids_raise(kind, data):
    ids = data[1]
    index = build(kind, data)
    with pytest.raises(RetrievalError, match=str(ids[3])):
        index.add(unit(2, 5), np.array([ids[3], 999_999]))
    with pytest.raises(RetrievalError, match="duplicates"):
        index.add(unit(2, 5), np.array([999_999, 999_999]))
    with pytest.raises(RetrievalError, match="dimension"):
        index.add(np.zeros((1, DIM + 1), np.float32), np.array([999_999]))
    assert index.size == N
    index.add(unit(1, 6), np.array([999_999]))  # a fresh id is fine, and so is a removed one
    index.remove([ids[0]])
    index.add(unit(1, 7), np.array([ids[0]]))
    assert index.size == N + 1


def test_save_load_round_trip(kind, data, tmp_path):
    vectors, ids = data
    index = build(kind, data)
    index.remove(ids[:50])
    assert sorted(index.save(tmp_path)) == ["labels.npy", "vectors.faiss"]
    loaded = create_vector_index(kind, DIM, RetrievalConfig(device="cpu"))
    loaded.load(tmp_path)
    assert (loaded.size, loaded.deleted) == (index.size, index.deleted)
    queries = np.concatenate([vectors[:100], unit(50, 3)])
    before, after = index.search(queries, 8), loaded.search(queries, 8)
    np.testing.assert_array_equal(before[1], after[1])
    np.testing.assert_allclose(before[0], after[0], atol=1e-6)
    loaded.add(unit(1, 9), np.array([1]))  # a loaded index takes new vectors
    assert loaded.search(unit(1, 9), 1)[1][0, 0] == 1


def test_load_of_a_wrong_dimension_names_the_file(data, tmp_path):
    build("flat", data).save(tmp_path)
    other = create_vector_index("flat", DIM * 2, RetrievalConfig(device="cpu"))
    with pytest.raises(ArtefactError, match="dimension") as exc:
        other.load(tmp_path)
    assert exc.value.path == tmp_path / "vectors.faiss"


def test_load_of_a_corrupt_file_names_it(data, tmp_path):
    build("flat", data).save(tmp_path)
    (tmp_path / "vectors.faiss").write_bytes(b"not faiss")
    with pytest.raises(ArtefactError) as exc:
        create_vector_index("flat", DIM, RetrievalConfig(device="cpu")).load(tmp_path)
    assert exc.value.path == tmp_path / "vectors.faiss"


def test_compaction_keeps_ids(kind, data):
    vectors, ids = data
    index = build(kind, data)
    index.remove(ids[:300])
    index.compact()
    assert (index.size, index.deleted, len(index.labels)) == (N - 300, 0, N - 300)
    assert set(index.labels.tolist()) == set(ids[300:].tolist())
    assert self_hits(index, vectors[300:600], ids[300:600]) >= (1.0 if kind == "flat" else 0.95)
    np.testing.assert_allclose(index.reconstruct([int(ids[400])])[0], vectors[400], atol=1e-6)


def test_many_removals_compact_automatically(kind, data):
    vectors, ids = data
    index = build(kind, data)
    index.remove(ids[:1200])  # more than max(1000, a quarter) tombstones
    assert (index.size, index.deleted) == (N - 1200, 0)
    assert self_hits(index, vectors[1200:1400], ids[1200:1400]) >= (1.0 if kind == "flat" else 0.95)


def test_cuda_without_a_gpu_falls_back_to_the_cpu_with_one_warning(kind, data, caplog):
    vectors, ids = data
    with caplog.at_level(logging.WARNING):
        index = create_vector_index(kind, DIM, RetrievalConfig(device="cuda"), N)
        index.add(vectors, ids)
        _, found = index.search(vectors[:50], 1)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "CPU" in warnings[0].getMessage(), [r.getMessage() for r in warnings]
    assert not index.gpu.enabled and index.describe()["device"] == "cpu"
    assert np.mean(found[:, 0] == ids[:50]) >= 0.95


def test_empty_index_searches_to_nothing(kind):
    index = create_vector_index(kind, DIM, RetrievalConfig(device="cpu"))
    scores, found = index.search(unit(3, 0), 4)
    assert found.shape == (3, 4) and (found == -1).all() and np.isneginf(scores).all()


def test_choose_kind_by_size():
    auto = RetrievalConfig(flat_max=100)
    assert choose_kind(auto, 0) == "flat" and choose_kind(auto, 100) == "flat"
    assert choose_kind(auto, 101) == "hnsw"
    assert choose_kind(RetrievalConfig(flat_max=100, approximate="ivf"), 101) == "ivf"
    for kind in KINDS:
        assert choose_kind(RetrievalConfig(index_type=kind, flat_max=100), 5) == kind
        assert choose_kind(RetrievalConfig(index_type=kind, flat_max=100), 5000) == kind


def test_unknown_kind_lists_the_known_ones():
    with pytest.raises(ConfigError, match="flat, hnsw, ivf") as info:
        create_vector_index("annoy", DIM, RetrievalConfig())
    assert "retrieval.index_type" in str(info.value)
    assert index_kinds() == VECTOR_INDEXES.names() == ["flat", "hnsw", "ivf"]


def test_a_dotted_path_names_an_index_of_ones_own():
    index = create_vector_index("retrieval.index.flat:FlatIndex", DIM, RetrievalConfig(device="cpu"))
    assert index.kind == "flat"
    with pytest.raises(ConfigError, match="not a subclass"):
        create_vector_index("retrieval.config:RetrievalConfig", DIM, RetrievalConfig(device="cpu"))


def test_an_emptied_index_saved_and_loaded_takes_vectors_again(kind, data, tmp_path):
    vectors, ids = data
    index = build(kind, data)
    index.remove(ids)  # compacts to nothing
    index.save(tmp_path)
    loaded = create_vector_index(kind, DIM, RetrievalConfig(device="cpu"))
    loaded.load(tmp_path)
    assert loaded.size == 0
    loaded.add(vectors[:100], ids[:100])
    assert self_hits(loaded, vectors[:100], ids[:100]) >= (1.0 if kind == "flat" else 0.95)
