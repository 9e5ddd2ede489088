"""The Q&A index with a fast deterministic embedder: merging, add/remove without rebuild, save/load and its
errors (a malformed manifest, a foreign --out), edits under the lock, hybrid scoring, answered/ambiguous, async
search off the event loop, and the CPU fallback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import time
import zlib
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from csbot import ARTEFACT_FORMAT
from csbot.errors import (
    ArtefactError,
    ConfigError,
    EmbeddingMismatchError,
    IncompatibleArtefactError,
    RetrievalError,
    UnknownRecordError,
)
from retrieval.config import RetrievalConfig
from retrieval.qa_index import MANIFEST, QAIndex
from retrieval.records import Hit, Provenance, QARecord, SearchResult


class TrigramEmbedder:
    """Unit vectors of hashed character trigrams: deterministic, instant, similar texts get similar vectors.

    ``blur_digits`` maps every digit to ``#``, as dense models blur order numbers; ``delay`` sleeps in
    every ``encode`` call, standing in for a slow model.
    """

    def __init__(self, dimension=512, blur_digits=False, delay=0.0):
        self.name, self.dimension, self.device = "trigram-test", dimension, "cpu"
        self.blur_digits, self.delay = blur_digits, delay
        self.calls = 0

    def encode(self, texts, batch_size=None, progress=None):
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            text = " ".join(text.lower().split())
            if self.blur_digits:
                text = "".join("#" if c.isdigit() else c for c in text)
            padded = f"  {text}  "
            for i in range(len(padded) - 2):
                out[row, zlib.crc32(padded[i : i + 3].encode()) % self.dimension] += 1.0
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        if progress is not None:
            progress(len(texts))
        return out


FAQ = [
    ("f-track", "Where is my order?", "Track it on the Orders page.", "track_order"),
    ("f-track2", "where is my ORDER", "Use the tracking link in your e-mail.", "track_order"),  # same once normalised
    ("f-pw", "How do I reset my password?", "Use the Forgot password link.", "reset_password"),
    ("f-pw2", "How do I reset my passwords?", "Click Forgot password on the login page.", "reset_password"),  # near
    ("f-ship", "Do you ship to Canada?", "Yes, to Canada and the US.", "shipping"),
    ("f-pay", "Can I pay with PayPal?", "Yes, PayPal and all major cards.", "payment"),
    ("f-cancel", "How can I cancel my subscription?", "Cancel it under Account, then Plan.", "cancel"),
    ("f-hours", "What are your opening hours?", "9 to 5 on weekdays.", "hours"),
]
QUERIES = ["where is my order", "reset password", "shipping to canada", "paypal", "opening hours", "zzz qqq"]


def records():
    return [QARecord(id, question, answer, intent=intent, tags=[intent], source="faq.csv") for id, question, answer, intent in FAQ]


def config(**overrides):
    return RetrievalConfig(**{"device": "cpu", "merge_threshold": 0.9, **overrides})


@pytest.fixture
def embedder():
    return TrigramEmbedder()


@pytest.fixture
def index(embedder):
    return QAIndex.build(records(), config(), embedder=embedder)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A saved index to copy and break."""
    built = QAIndex.build(records(), config(), embedder=TrigramEmbedder())
    built.remove(["f-hours"])
    return built.save(tmp_path_factory.mktemp("qa") / "index")


@pytest.fixture
def copy(saved, tmp_path):
    return shutil.copytree(saved, tmp_path / "index")


def top_ids(results):
    return [r.top.record.id if r.top else None for r in results]


def as_dicts(results):
    return [r.to_dict() for r in results]


# -- building ------------------------------------------------------------------------------------------


def test_build_merges_exact_and_near_identical_questions_keeping_provenance(index):
    assert len(index) == 6 and index.vectors.size == 6
    track, pw = index.get("f-track"), index.get("f-pw")
    assert index.get("f-track2") is track and index.get("f-pw2") is pw
    assert [(p.id, p.question, p.answer, p.source) for p in track.merged] == [
        ("f-track2", "where is my ORDER", "Use the tracking link in your e-mail.", "faq.csv")]
    assert [p.id for p in pw.merged] == ["f-pw2"]
    assert index.get("f-ship").merged == []
    assert index.stats()["questions"] == len(FAQ) and index.stats()["entries"] == 6


def test_build_copies_the_records_it_is_given(embedder):
    given = records()
    QAIndex.build(given, config(), embedder=embedder)
    assert all(r.merged == [] for r in given)


def test_without_near_merging_only_exact_duplicates_merge(embedder):
    index = QAIndex.build(records(), config(merge_threshold=1.01), embedder=embedder)
    assert len(index) == 7
    assert index.get("f-track2") is index.get("f-track") and index.get("f-pw2") is not index.get("f-pw")


def test_build_rejects_duplicate_ids_and_empty_data(embedder):
    clash = [*records(), QARecord("f-ship", "Another question entirely", "x")]
    with pytest.raises(RetrievalError, match="duplicate record id 'f-ship'"):
        QAIndex.build(clash, config(), embedder=embedder)
    mined = QARecord("c1:0", "Another question entirely", "x", merged=[Provenance("f-pay", "q", "a")])
    with pytest.raises(RetrievalError, match="duplicate record id 'f-pay'"):
        QAIndex.build([*records(), mined], config(), embedder=embedder)
    with pytest.raises(RetrievalError, match="no Q&A records"):
        QAIndex.build([], config(), embedder=embedder)


def test_build_reports_progress(embedder):
    calls = []
    QAIndex.build(records(), config(), embedder=embedder, progress=lambda *args: calls.append(args))
    assert ("encode", len(FAQ) - 1, len(FAQ) - 1) in calls  # the exact duplicate is merged before encoding
    assert sum(advance for stage, advance, _ in calls if stage == "index") == len(FAQ) - 1


def test_search_finds_the_right_entry(index):
    results = index.search(QUERIES)
    assert top_ids(results[:5]) == ["f-track", "f-pw", "f-ship", "f-pay", "f-hours"]
    assert all(len(r.hits) == 5 for r in results)
    assert as_dicts(index.search("paypal")) == as_dicts(results[3:4])  # a bare string is one query
    scores = [h.rank_score for h in results[0].hits]
    assert scores == sorted(scores, reverse=True)
    assert index.search(QUERIES[0], k=2)[0].hits[:2] == results[0].hits[:2]


# -- changing a built index -----------------------------------------------------------------------------


def test_add_without_rebuild(index, embedder):
    calls = embedder.calls
    added = index.add([QARecord("n-gift", "Do you sell gift cards?", "Yes, from 10 to 200 euros.", intent="gift")])
    assert added == ["n-gift"] and len(index) == 7 and embedder.calls == calls + 1
    hit = index.search("do you sell gift cards")[0].top
    assert hit.record.id == "n-gift" and hit.score > 0.8
    assert index.get("n-gift").intent == "gift"


@pytest.mark.parametrize("clash", ["f-ship", "f-track2"])
def test_add_rejects_ids_already_in_the_index(index, clash):
    with pytest.raises(RetrievalError, match=clash):
        index.add([QARecord("n-1", "fresh question", "x"), QARecord(clash, "Another question", "y")])
    with pytest.raises(RetrievalError, match="duplicate"):
        index.add([QARecord("n-2", "q one", "x"), QARecord("n-2", "q two", "y")])
    assert len(index) == 6 and "n-1" not in index.labels_by_id


def test_add_rejects_merged_ids_already_in_the_index(index):
    mined = QARecord("c9:0", "Do you ship to Mexico?", "Yes.", merged=[Provenance("f-pay", "old", "old")])
    with pytest.raises(RetrievalError, match="f-pay"):
        index.add([mined])
    mined.merged = [Provenance("c9:0", "dup", "dup")]
    with pytest.raises(RetrievalError, match="duplicate"):
        index.add([mined])
    assert len(index) == 6 and index.get("f-pay").id == "f-pay"


def test_add_keeps_the_provenance_of_merged_records(index):
    mined = QARecord("c9:0", "Do you ship to Mexico?", "Yes.", merged=[Provenance("c9:4", "do you ship to mexico", "Sure.")])
    index.add([mined])
    assert index.get("c9:4") is index.get("c9:0")
    index.remove(["c9:0"])
    assert index.get("c9:4").question == "do you ship to mexico"


def test_add_to_an_empty_index(embedder):
    index = QAIndex(config(), embedder)
    assert index.search("paypal")[0].hits == []
    index.add(records()[4:6])
    assert top_ids(index.search(["paypal", "ship to canada"])) == ["f-pay", "f-ship"]


def test_remove_an_entry(index):
    assert index.remove(["f-ship"]) == 1
    assert len(index) == 5 and index.vectors.size == 5
    with pytest.raises(UnknownRecordError):
        index.get("f-ship")
    assert "f-ship" not in [h.record.id for r in index.search(QUERIES) for h in r.hits]


def test_remove_a_merged_question_keeps_the_entry(index):
    assert index.remove(["f-track2"]) == 1
    track = index.get("f-track")
    assert track.merged == [] and len(index) == 6 and index.vectors.size == 6
    with pytest.raises(UnknownRecordError):
        index.get("f-track2")


def test_remove_the_same_id_twice(index):
    assert index.remove(["f-pay", "f-pay"]) == 1
    assert len(index) == 5


def test_remove_unknown_id_removes_nothing(index):
    with pytest.raises(UnknownRecordError, match="'nope'"):
        index.remove(["f-pay", "nope"])
    assert index.get("f-pay").id == "f-pay" and len(index) == 6


def test_removing_a_survivor_promotes_its_first_merged_question(index):
    vector_before = index.vectors.size
    assert index.remove(["f-track"]) == 1
    heir = index.get("f-track2")
    assert (heir.id, heir.question, heir.answer) == ("f-track2", "where is my ORDER", "Use the tracking link in your e-mail.")
    assert heir.merged == [] and len(index) == 6 and index.vectors.size == vector_before
    assert index.search("where is my order")[0].top.record.id == "f-track2"
    with pytest.raises(UnknownRecordError):
        index.get("f-track")
    assert index.remove(["f-track2"]) == 1 and len(index) == 5


def test_promotion_updates_the_lexical_index(index):
    index.search("reset password", hybrid=True)  # builds the BM25 index
    index.remove(["f-pw"])  # "How do I reset my passwords?" takes the entry over
    hits = {h.record.id: h for h in index.search("passwords", hybrid=True)[0].hits}
    assert hits["f-pw2"].lexical > 0
    hits = {h.record.id: h for h in index.search("password", hybrid=True)[0].hits}
    assert hits["f-pw2"].lexical == 0  # the old question's words are gone
    index.remove(["f-pw2"])
    results = index.search(["password", "passwords"], hybrid=True)
    assert not {"f-pw", "f-pw2"} & {h.record.id for r in results for h in r.hits}


def test_removed_ids_can_be_added_again(index):
    index.remove(["f-pay"])
    index.add([QARecord("f-pay", "Do you take Apple Pay?", "Yes.")])
    assert index.search("apple pay")[0].top.record.id == "f-pay"


# -- saving and loading ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_save_load_round_trip(tmp_path, kind):
    index = QAIndex.build(records(), config(index_type=kind), embedder=TrigramEmbedder())
    index.remove(["f-cancel"])
    out = index.save(tmp_path / "index")
    assert json.loads((out / MANIFEST).read_text())["index_type"] == kind
    loaded = QAIndex.load(out, config(), embedder=TrigramEmbedder())
    for hybrid in (False, True):
        assert as_dicts(loaded.search(QUERIES, hybrid=hybrid)) == as_dicts(index.search(QUERIES, hybrid=hybrid))
    assert loaded.get("f-track2").id == "f-track" and len(loaded) == 5
    with pytest.raises(UnknownRecordError):
        loaded.get("f-cancel")
    stats, before = loaded.stats(), index.stats()
    assert {k: stats[k] for k in ("entries", "questions", "distinct_answers", "index_type")} == {
        k: before[k] for k in ("entries", "questions", "distinct_answers", "index_type")}
    # new records after a load get fresh labels, never a removed entry's
    loaded.add([QARecord("n-1", "Is there a student discount?", "Yes, 10%.")])
    assert len(set(loaded.records)) == 6 and max(loaded.records) == index.next_label
    assert loaded.search("student discount")[0].top.record.id == "n-1"


def test_save_replaces_an_existing_index(index, tmp_path):
    out = index.save(tmp_path / "index")
    index.remove(["f-pay"])
    index.save(out)
    assert QAIndex.load(out, config(), embedder=TrigramEmbedder()).stats()["entries"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]  # no temporary directories left


def test_load_missing_directory(tmp_path, embedder):
    with pytest.raises(ArtefactError, match="no such index directory") as exc:
        QAIndex.load(tmp_path / "none", config(), embedder=embedder)
    assert exc.value.path == tmp_path / "none"


def test_load_missing_manifest(copy, embedder):
    (copy / MANIFEST).unlink()
    with pytest.raises(ArtefactError, match="missing file") as exc:
        QAIndex.load(copy, config(), embedder=embedder)
    assert exc.value.path == copy / MANIFEST


def test_load_corrupt_manifest(copy, embedder):
    (copy / MANIFEST).write_text('{"kind": "qa-index", ')
    with pytest.raises(ArtefactError, match="corrupt JSON") as exc:
        QAIndex.load(copy, config(), embedder=embedder)
    assert exc.value.path == copy / MANIFEST


def edit_manifest(directory, **changes):
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest.update(changes)
    (directory / MANIFEST).write_text(json.dumps(manifest))


def test_load_wrong_kind(copy, embedder):
    edit_manifest(copy, kind="nlu-model")
    with pytest.raises(ArtefactError, match="not a csbot Q&A index") as exc:
        QAIndex.load(copy, config(), embedder=embedder)
    assert exc.value.path == copy / MANIFEST


def test_load_other_format_version(copy, embedder):
    edit_manifest(copy, format=ARTEFACT_FORMAT + 1, csbot_version="99.0")
    with pytest.raises(IncompatibleArtefactError, match="build the index again") as exc:
        QAIndex.load(copy, config(), embedder=embedder)
    assert exc.value.path == copy / MANIFEST and "99.0" in str(exc.value)


def test_incompatible_format_names_the_file_and_both_format_numbers(copy, embedder):
    edit_manifest(copy, format=ARTEFACT_FORMAT + 1)
    with pytest.raises(IncompatibleArtefactError) as exc:
        QAIndex.load(copy, config(), embedder=embedder)
    message = str(exc.value)
    assert str(copy / MANIFEST) in message
    assert f"saved in artefact format {ARTEFACT_FORMAT + 1}" in message
    assert f"reads artefact format {ARTEFACT_FORMAT}" in message


@pytest.mark.parametrize("kind", ["annoy", "no.such.module:Index", "retrieval.records:QARecord"])
def test_load_unknown_index_type_names_the_manifest(copy, embedder, kind):
    edit_manifest(copy, index_type=kind)
    with pytest.raises(ArtefactError, match="unknown index type") as exc:
        QAIndex.load(copy, config(), embedder=embedder)
    assert exc.value.path == copy / MANIFEST and str(copy / MANIFEST) in str(exc.value)
    assert repr(kind) in str(exc.value)


def test_a_saved_index_has_a_version_and_creation_time(index, tmp_path):
    assert index.version == "" and index.created is None and index.info is None  # not saved yet
    out = index.save(tmp_path / "index")
    manifest = json.loads((out / MANIFEST).read_text())
    assert re.match(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$", manifest["version"])
    created = datetime.fromisoformat(manifest["created"])
    assert created.tzinfo is not None and abs(datetime.now(UTC) - created) < timedelta(minutes=5)
    assert index.version == manifest["version"] and index.created == created
    assert index.info.path == out / MANIFEST and index.info.kind == "qa-index"
    first = QAIndex.load(out, config(), embedder=TrigramEmbedder())
    second = QAIndex.load(out, config(), embedder=TrigramEmbedder())
    assert first.version == second.version == manifest["version"] and first.created == created
    assert first.stats()["version"] == manifest["version"] and first.stats()["created"] == manifest["created"]
    index.remove(["f-pay"])
    index.save(out)
    assert index.version != manifest["version"]  # every save is a new version


def test_an_index_without_a_version_still_loads_with_a_derived_one(copy, embedder):
    manifest = json.loads((copy / MANIFEST).read_text())
    del manifest["version"]  # as written before versions existed
    manifest["created"] = "2025-03-04T05:06:07Z"
    (copy / MANIFEST).write_text(json.dumps(manifest))
    first = QAIndex.load(copy, config(), embedder=embedder)
    assert first.version.startswith("20250304T050607Z-") and len(first.version) == len("20250304T050607Z-") + 8
    assert first.created == datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert QAIndex.load(copy, config(), embedder=TrigramEmbedder()).version == first.version


def test_load_with_another_configured_model(copy, embedder):
    with pytest.raises(EmbeddingMismatchError, match="'paraphrase-MiniLM-L3-v2' is configured") as exc:
        QAIndex.load(copy, config(model="paraphrase-MiniLM-L3-v2"), embedder=embedder)
    assert exc.value.path == copy / MANIFEST


def test_aliases_of_the_default_model_are_the_same_model(copy, embedder):
    assert json.loads((copy / MANIFEST).read_text())["embedding_model"] == "all-MiniLM-L6-v2"
    loaded = QAIndex.load(copy, config(model="sentence-transformers/all-MiniLM-L6-v2"), embedder=embedder)
    assert loaded.search("paypal")[0].top.record.id == "f-pay"
    edit_manifest(copy, embedding_model="sentence-transformers/all-MiniLM-L6-v2")
    QAIndex.load(copy, config(), embedder=embedder, verify=False)


def test_load_truncated_vectors(copy, embedder):
    data = (copy / "vectors.faiss").read_bytes()
    (copy / "vectors.faiss").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtefactError, match="checksum") as exc:
        QAIndex.load(copy, config(), embedder=embedder)
    assert exc.value.path == copy / "vectors.faiss"
    with pytest.raises(ArtefactError) as exc:  # unverified, faiss itself fails to read it
        QAIndex.load(copy, config(), embedder=embedder, verify=False)
    assert exc.value.path == copy / "vectors.faiss"


def test_load_modified_records(copy, embedder):
    path = copy / "records.jsonl"
    path.write_text(path.read_text().replace("PayPal", "Klarna"))
    with pytest.raises(ArtefactError, match="checksum") as exc:
        QAIndex.load(copy, config(), embedder=embedder)
    assert exc.value.path == path


def test_load_records_that_do_not_match_the_vectors(copy, embedder):
    path = copy / "records.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    with pytest.raises(ArtefactError, match="records but") as exc:
        QAIndex.load(copy, config(), embedder=embedder, verify=False)
    assert exc.value.path == path


def test_load_corrupt_record_line(copy, embedder):
    path = copy / "records.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join([lines[0], '{"label": 1}\n', *lines[2:]]))
    with pytest.raises(ArtefactError, match="line 2: corrupt record") as exc:
        QAIndex.load(copy, config(), embedder=embedder, verify=False)
    assert exc.value.path == path


def test_load_missing_file(copy, embedder):
    (copy / "labels.npy").unlink()
    with pytest.raises(ArtefactError, match="missing file") as exc:
        QAIndex.load(copy, config(), embedder=embedder)
    assert exc.value.path == copy / "labels.npy"


def test_load_with_an_embedder_of_another_dimension(copy):
    with pytest.raises(EmbeddingMismatchError, match="512-d") as exc:
        QAIndex.load(copy, config(), embedder=TrigramEmbedder(dimension=256))
    assert exc.value.path == copy / MANIFEST


# -- never deleting what is not ours, the manifest schema, concurrent edits ------------------------------


def test_save_refuses_a_directory_that_is_not_an_index_and_deletes_nothing(index, tmp_path):
    out = tmp_path / "work"
    out.mkdir()
    (out / "report.docx").write_bytes(b"quarterly report")
    with pytest.raises(ConfigError, match=r"exists and is not a csbot Q&A index \(it holds 1 entry\)") as exc:
        index.save(out)
    assert str(out) in str(exc.value)
    assert [p.name for p in out.iterdir()] == ["report.docx"] and (out / "report.docx").read_bytes() == b"quarterly report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]


def test_save_refuses_a_file(index, tmp_path):
    (tmp_path / "index").write_text("a file")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        index.save(tmp_path / "index")
    assert (tmp_path / "index").read_text() == "a file"


def test_an_index_is_saved_with_the_umask(index, tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        out = index.save(tmp_path / "index")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755  # not 0700, as tempfile.mkdtemp made it
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o644}


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_load_an_index_type_the_vectors_are_not(copy, embedder, kind):
    edit_manifest(copy, index_type=kind)  # the saved vectors are a flat index
    with pytest.raises(ArtefactError, match=f"not the .* of the '{kind}' index") as exc:
        QAIndex.load(copy, config(), embedder=embedder)
    assert exc.value.path == copy / "vectors.faiss"


def test_a_checksum_entry_outside_the_directory_is_refused(copy, embedder, tmp_path):
    from csbot.artefacts import sha256_file

    outside = tmp_path / "secret.txt"
    outside.write_text("not part of the index")
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["checksums"]["../secret.txt"] = sha256_file(outside)
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtefactError, match="not a relative path inside the artefact directory") as exc:
        QAIndex.load(copy, config(), embedder=embedder)
    assert exc.value.path == copy / MANIFEST


@pytest.mark.parametrize(("field", "value"), [
    ("checksums", ["records.jsonl"]), ("checksums", {"/etc/hostname": "0" * 64}), ("dimension", 512.5),
    ("dimension", "512"), ("dimension", 0), ("finetuned", "no"), ("next_label", -1), ("index_type", ["flat"]),
    ("embedding_model", None),
])
def test_a_malformed_manifest_names_the_file_and_the_field(copy, embedder, field, value):
    edit_manifest(copy, **{field: value})
    with pytest.raises(ArtefactError, match=f"invalid manifest: {field}") as exc:
        QAIndex.load(copy, config(), embedder=embedder)
    assert exc.value.path == copy / MANIFEST


def test_edits_hold_the_lock_so_concurrent_ones_all_land(copy):
    import threading

    def add(record_id):
        with QAIndex.edit(copy, config(), embedder=TrigramEmbedder(delay=0.2)) as edited:
            edited.add([QARecord(record_id, f"question {record_id}", "answer")])

    threads = [threading.Thread(target=add, args=(f"new-{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    loaded = QAIndex.load(copy, config(), embedder=TrigramEmbedder())
    assert {"new-0", "new-1", "new-2"} <= set(loaded.labels_by_id)
    assert sorted(p.name for p in copy.parent.iterdir()) == ["index"]  # no lock file or temp dir left


def test_a_failed_edit_saves_nothing(copy, embedder):
    before = (copy / MANIFEST).read_text()
    with pytest.raises(UnknownRecordError), QAIndex.edit(copy, config(), embedder=embedder) as edited:
        edited.remove(["no-such-id"])
    assert (copy / MANIFEST).read_text() == before


# -- hybrid scoring -------------------------------------------------------------------------------------

ORDERS = [
    ("o-1", "where is my order 48213", "Order 48213 left the warehouse on Monday."),
    ("o-2", "where is my order 99120", "Order 99120 is delayed by two days."),
    ("o-3", "where is my order 55012", "Order 55012 was delivered."),
    ("o-4", "can I change my order", "Yes, until it ships."),
    ("o-5", "please cancel my order", "Cancel it under Orders."),
]


def order_index(**overrides):
    """Order questions that a digit-blind embedder cannot tell apart (near merging off, or they would merge)."""
    built = [QARecord(id, q, a) for id, q, a in ORDERS]
    return QAIndex.build(built, config(merge_threshold=1.01, **overrides), embedder=TrigramEmbedder(blur_digits=True))


@pytest.fixture
def orders():
    return order_index()


def test_hybrid_ranks_the_exact_order_number_first(orders):
    dense = {h.record.id: h for h in orders.search("where is my order 99120", hybrid=False)[0].hits}
    assert dense["o-1"].score == pytest.approx(dense["o-2"].score)  # dense alone cannot tell them apart
    assert all(h.lexical == 0 and h.rank_score == h.score for h in dense.values())
    hits = orders.search("where is my order 99120", hybrid=True)[0].hits
    assert hits[0].record.id == "o-2"
    assert hits[0].lexical > 0 and hits[0].lexical > hits[1].lexical
    assert hits[0].rank_score == pytest.approx(hits[0].score + 0.2 * hits[0].lexical)
    assert hits[0].score == pytest.approx(dense["o-2"].score)  # score stays the cosine


def test_hybrid_follows_the_configuration(orders):
    assert orders.search("where is my order 55012")[0].top.record.id == "o-3"  # enabled by default
    dense = order_index(hybrid={"enabled": False})
    assert all(h.lexical == 0 for h in dense.search("where is my order 55012")[0].hits)
    assert dense.search("where is my order 55012", hybrid=True)[0].top.record.id == "o-3"  # per search


def test_hybrid_brings_in_lexical_candidates_beyond_the_dense_ones():
    index = order_index(k=1, hybrid={"candidates": 1})
    assert index.search("status of 99120", hybrid=False)[0].top.record.id != "o-2"  # not the dense candidate
    hit = index.search("status of 99120")[0].top
    assert hit.record.id == "o-2" and hit.lexical > 0


# -- answered and ambiguous -----------------------------------------------------------------------------


def hit(answer, rank_score, score=None):
    return Hit(QARecord(answer + "-id", "q", answer), rank_score if score is None else score, rank_score)


@pytest.mark.parametrize(
    ("hits", "answered", "ambiguous"),
    [
        ([], False, False),
        ([hit("a", 0.80), hit("b", 0.70)], True, False),
        ([hit("a", 0.80), hit("b", 0.78)], True, True),  # two answers closer than the margin
        ([hit("a", 0.80), hit("a", 0.79), hit("b", 0.50)], True, False),  # same answer: no rival
        ([hit("a", 0.80), hit("a", 0.79), hit("b", 0.785)], True, True),
        ([hit("a", 0.61)], True, True),  # within the margin above the threshold
        ([hit("a", 0.59)], False, True),  # within the margin below it
        ([hit("a", 0.50), hit("b", 0.20)], False, False),
        ([hit("a", 0.65, score=0.55)], True, False),  # the fused rank score decides
    ],
)
def test_answered_and_ambiguous(hits, answered, ambiguous):
    result = SearchResult("q", hits, threshold=0.6, margin=0.03)
    assert (result.answered, result.ambiguous) == (answered, ambiguous)
    assert result.top is (hits[0] if hits else None)
    assert result.to_dict()["answered"] is answered and result.to_dict()["ambiguous"] is ambiguous


def test_thresholds_and_margin_come_from_the_config(embedder):
    index = QAIndex.build(records(), config(threshold=0.9, ambiguity_margin=0.0, hybrid={"enabled": False}),
                          embedder=embedder)
    exact, unrelated = index.search(["Can I pay with PayPal?", "zzz qqq"])
    assert (exact.threshold, exact.margin) == (0.9, 0.0)
    assert exact.answered and not exact.ambiguous and exact.top.score == pytest.approx(1.0, abs=1e-5)
    assert not unrelated.answered
    strict = QAIndex.build(records(), config(threshold=1.5, hybrid={"enabled": False}), embedder=embedder)
    assert not strict.search("Can I pay with PayPal?")[0].answered


# -- async search ---------------------------------------------------------------------------------------


def test_asearch_keeps_the_event_loop_responsive():
    index = QAIndex.build(records(), config(), embedder=TrigramEmbedder(delay=0.2))
    expected = as_dicts(QAIndex.build(records(), config(), embedder=TrigramEmbedder()).search(QUERIES[:2]))

    async def main():
        ticks, done = 0, asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.005)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        started = time.monotonic()
        results = await index.asearch(QUERIES[:2])
        elapsed = time.monotonic() - started
        done.set()
        await task
        return results, ticks, elapsed

    results, ticks, elapsed = asyncio.run(main())
    assert elapsed >= 0.2 and ticks >= 5  # a blocked loop would have ticked once
    assert as_dicts(results) == expected


def test_concurrent_asearches():
    index = QAIndex.build(records(), config(), embedder=TrigramEmbedder())

    async def main():
        return await asyncio.gather(*(index.asearch(q) for q in QUERIES[:5]))

    assert [top_ids(r)[0] for r in asyncio.run(main())] == ["f-track", "f-pw", "f-ship", "f-pay", "f-hours"]


# -- devices --------------------------------------------------------------------------------------------


def test_cuda_configured_without_a_gpu_falls_back_to_the_cpu(caplog, tmp_path):
    with caplog.at_level(logging.WARNING):
        index = QAIndex.build(records(), config(device="cuda"), embedder=TrigramEmbedder())
        results = index.search(QUERIES[:2])
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "CPU" in warnings[0]
    assert index.stats()["index_device"] == "cpu"
    assert top_ids(results) == ["f-track", "f-pw"]
    out = index.save(tmp_path / "index")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        loaded = QAIndex.load(out, config(device="cuda"), embedder=TrigramEmbedder())
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
    assert top_ids(loaded.search(QUERIES[:2])) == ["f-track", "f-pw"]
