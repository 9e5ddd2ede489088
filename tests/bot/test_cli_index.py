"""``csbot index`` end to end with the real default embedding model: build, search, stats, add, remove,
evaluate, one-line errors with their exit codes, what build does to an existing --out, and concurrent adds.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys

import pytest
from conftest import REPO

from bot.cli import main

FAQ_CSV = """id,question,answer,intent
track-1,Where is my order?,Follow your parcel on the Orders page.,track_order
track-2,where is my ORDER,Use the tracking link in your e-mail.,track_order
return-1,How do I return an item?,Print a free return label within 30 days.,return_item
pay-1,Which payment methods do you accept?,"Cards, PayPal and bank transfer.",payment
ship-1,Do you ship internationally?,"We ship to the EU, the UK and the US.",shipping
pw-1,I forgot my password,Use the Forgot password link on the login page.,reset_password
"""


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One index built by ``csbot index build`` for the module: (directory, exit code, stdout)."""
    root = tmp_path_factory.mktemp("cli-index")
    qa = root / "faq.csv"
    qa.write_text(FAQ_CSV, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["index", "build", "--qa", str(qa), "--out", str(root / "index"), "--device", "cpu"])
    return root / "index", code, out.getvalue() + err.getvalue()


@pytest.fixture
def index_dir(built, tmp_path):
    """A copy of the built index that a test may change."""
    return shutil.copytree(built[0], tmp_path / "index")


def search(capsys, index_dir, *args):
    code, out, err = run_cli(capsys, "index", "search", "--index", str(index_dir), *args)
    assert code == 0, err
    return json.loads(out)


def test_build(built):
    directory, code, output = built
    assert code == 0, output
    assert f"indexed 6 questions as 5 entries (flat, cpu) in {directory}" in output
    assert {"csbot-index.json", "vectors.faiss", "labels.npy", "records.jsonl"} <= {p.name for p in directory.iterdir()}


def test_search_prints_json_hits(capsys, built):
    result = search(capsys, built[0], "which payment methods can I use")
    assert result["query"] == "which payment methods can I use"
    assert set(result) == {"query", "answered", "ambiguous", "threshold", "hits"}
    assert len(result["hits"]) == 5 and result["answered"] is True
    top = result["hits"][0]
    assert (top["id"], top["answer"], top["intent"]) == ("pay-1", "Cards, PayPal and bank transfer.", "payment")
    assert top["score"] > 0.5 and top["rank_score"] >= top["score"]
    assert [h["rank_score"] for h in result["hits"]] == sorted((h["rank_score"] for h in result["hits"]), reverse=True)


def test_search_several_queries_k_and_dense(capsys, built):
    results = search(capsys, built[0], "-k", "2", "--dense", "where is my parcel", "I can't remember my password")
    assert [r["hits"][0]["id"] for r in results] == ["track-1", "pw-1"]
    assert all(len(r["hits"]) == 2 for r in results)
    assert all(h["lexical"] == 0 and h["rank_score"] == h["score"] for r in results for h in r["hits"])
    merged = results[0]["hits"][0]["merged"]
    assert [m["id"] for m in merged] == ["track-2"]


def test_search_reads_queries_from_stdin(capsys, built, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("do you ship abroad\n\nhow do I send an item back\n"))
    results = search(capsys, built[0])
    assert [r["hits"][0]["id"] for r in results] == ["ship-1", "return-1"]


def test_stats(capsys, built):
    code, out, _ = run_cli(capsys, "index", "stats", "--index", str(built[0]))
    stats = json.loads(out)
    assert code == 0
    assert (stats["entries"], stats["questions"], stats["distinct_answers"]) == (5, 6, 5)
    assert stats["embedding_model"] == "all-MiniLM-L6-v2" and stats["finetuned"] is False
    assert (stats["index_type"], stats["index_device"], stats["index_dimension"]) == ("flat", "cpu", 384)
    assert stats["index_bytes"] > 5 * 384 * 4


def test_add_then_search_finds_it(capsys, index_dir, tmp_path):
    extra = tmp_path / "more.jsonl"
    extra.write_text(json.dumps({"id": "gift-1", "question": "Do you sell gift cards?",
                                 "answer": "Yes, from 10 to 200 euros.", "intent": "gift_card"}) + "\n")
    code, out, err = run_cli(capsys, "index", "add", "--index", str(index_dir), "--qa", str(extra))
    assert code == 0, err
    assert "added 1 records; the index holds 6 entries" in out
    assert search(capsys, index_dir, "can I buy a gift card")["hits"][0]["id"] == "gift-1"
    code, _, err = run_cli(capsys, "index", "add", "--index", str(index_dir), "--qa", str(extra))
    assert code == 6 and err.strip().splitlines() == ["error: record ids already in the index: gift-1 (remove them first)"]


def test_remove(capsys, index_dir):
    code, out, err = run_cli(capsys, "index", "remove", "--index", str(index_dir), "pay-1", "track-2")
    assert code == 0, err
    assert "removed 2 records; the index holds 4 entries" in out
    result = search(capsys, index_dir, "which payment methods do you accept")
    assert "pay-1" not in [h["id"] for h in result["hits"]]
    stats = json.loads(run_cli(capsys, "index", "stats", "--index", str(index_dir))[1])
    assert (stats["entries"], stats["questions"], stats["index_removed"]) == (4, 4, 1)


def test_remove_unknown_id(capsys, index_dir):
    code, out, err = run_cli(capsys, "index", "remove", "--index", str(index_dir), "pay-1", "nope")
    assert code == 6 and out == ""
    assert err.strip().splitlines() == ["error: no record with id 'nope' in the index"]
    stats = json.loads(run_cli(capsys, "index", "stats", "--index", str(index_dir))[1])
    assert stats["entries"] == 5  # nothing was removed or saved


def test_evaluate_writes_a_report(capsys, built, tmp_path):
    queries = tmp_path / "queries.csv"
    queries.write_text(
        "text,label\n"
        "has my parcel shipped yet,track_order\n"
        "I want to send an item back,return_item\n"
        "can I pay with PayPal,payment\n"
        "do you deliver abroad,shipping\n"
        "I can't log in and forgot my password,reset_password\n"
        "what is the capital of Mongolia,oos\n",
        encoding="utf-8",
    )
    report = tmp_path / "report"
    code, out, err = run_cli(capsys, "index", "evaluate", "--index", str(built[0]), "--data", str(queries),
                             "--report", str(report))
    assert code == 0, err
    metrics = json.loads((report / "report.json").read_text())
    for key in ("answer_at_1", "recall_at_5", "mrr", "coverage_at_95_precision"):
        assert 0.0 <= metrics[key] <= 1.0, key
        assert f"{key} {metrics[key]:.4f}" in out
    assert (metrics["n"], metrics["n_in_scope"], metrics["n_oos"]) == (6, 5, 1)
    assert metrics["recall_at_5"] == 1.0 and metrics["answer_at_1"] >= 0.8
    assert metrics["coverage_at_95_precision"] <= 5 / 6  # the out-of-scope query is never a right answer
    assert metrics["index"] == str(built[0])
    assert (report / "report.md").read_text().startswith(f"# Retrieval evaluation of {built[0]}")
    assert "6 queries, 1 out of scope" in out


@pytest.mark.parametrize("command", [("search", "hello"), ("stats",), ("remove", "x")])
def test_missing_index_is_one_line_and_exit_code_4(capsys, tmp_path, command):
    missing = tmp_path / "none"
    code, _, err = run_cli(capsys, "index", command[0], "--index", str(missing), *command[1:])
    assert code == 4
    assert err.strip().splitlines() == [f"error: {missing}: no such index directory"]
    assert "Traceback" not in err


def test_bad_qa_data_names_the_file_and_line(capsys, tmp_path):
    qa = tmp_path / "faq.csv"
    qa.write_text("question,answer\nwhere is my order,See Orders.\n,no question\n")
    code, _, err = run_cli(capsys, "index", "build", "--qa", str(qa), "--out", str(tmp_path / "index"))
    assert code == 3 and err.startswith(f"error: {qa}:3:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "index").exists()


# -- what a command does to an existing directory; concurrent edits; malformed manifests -------------------


def test_build_refuses_an_out_that_is_not_an_index_and_deletes_nothing(capsys, tmp_path):
    qa = tmp_path / "faq.csv"
    qa.write_text(FAQ_CSV, encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    (work / "src").mkdir()
    code, out, err = run_cli(capsys, "index", "build", "--qa", str(qa), "--out", str(work))
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        f"error: {work}: exists and is not a csbot Q&A index (it holds 2 entries); "
        "give an empty or new directory (nothing was changed)"]
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt", "src"] and (work / "notes.txt").read_text() == "mine"


def test_build_refuses_out_dot(capsys, tmp_path, monkeypatch):
    qa = tmp_path / "faq.csv"
    qa.write_text(FAQ_CSV, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "index", "build", "--qa", "faq.csv", "--out", ".")
    assert code == 2 and "exists and is not a csbot Q&A index" in err
    assert [p.name for p in tmp_path.iterdir()] == ["faq.csv"]


def test_build_refuses_a_model_directory(capsys, tiny_model_dir, tmp_path):
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    qa = tmp_path / "faq.csv"
    qa.write_text(FAQ_CSV, encoding="utf-8")
    code, _, err = run_cli(capsys, "index", "build", "--qa", str(qa), "--out", str(model))
    assert code == 2 and f"error: {model}: is a csbot NLU model, not a Q&A index" in err
    assert (model / "csbot-model.json").is_file()


def test_build_replaces_an_existing_index(capsys, index_dir, tmp_path):
    qa = tmp_path / "faq.csv"
    qa.write_text("\n".join(FAQ_CSV.splitlines()[:3]) + "\n", encoding="utf-8")
    (index_dir / "stray.txt").write_text("left by hand inside the index")
    code, _, err = run_cli(capsys, "index", "build", "--qa", str(qa), "--out", str(index_dir), "--device", "cpu")
    assert code == 0, err
    assert not (index_dir / "stray.txt").exists()  # an index is replaced whole
    assert json.loads((index_dir / "csbot-index.json").read_text())["count"] == 1
    assert sorted(p.name for p in index_dir.parent.iterdir()) == ["faq.csv", "index"]


def record_ids(index_dir):
    return {json.loads(line)["id"] for line in (index_dir / "records.jsonl").read_text().splitlines()}


def test_two_concurrent_adds_both_land(index_dir, tmp_path):
    procs = []
    for n in (1, 2):
        qa = tmp_path / f"more-{n}.jsonl"
        qa.write_text(json.dumps({"id": f"extra-{n}", "question": f"Question number {n} about gift cards?",
                                  "answer": f"Answer {n}."}) + "\n")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "index", "add", "--index", str(index_dir), "--qa", str(qa)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        ))
    results = [(proc.wait(timeout=600), proc.stdout.read(), proc.stderr.read()) for proc in procs]
    for proc in procs:
        proc.stdout.close()
        proc.stderr.close()
    assert [code for code, _, _ in results] == [0, 0], results
    assert {"extra-1", "extra-2"} <= record_ids(index_dir)
    assert len(record_ids(index_dir)) == 7
    assert sorted(p.name for p in index_dir.parent.iterdir()) == ["index", "more-1.jsonl", "more-2.jsonl"]


def edit_manifest(index_dir, **changes):
    path = index_dir / "csbot-index.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))
    return path


@pytest.mark.parametrize(("changes", "reason"), [
    ({"index_type": "ivf"}, "holds a faiss IndexFlatIP, not the IndexIVFFlat of the 'ivf' index"),
    ({"index_type": "annoy"}, "unknown index type 'annoy'"),
    ({"checksums": ["records.jsonl"]}, "invalid manifest: checksums: Input should be a valid dictionary"),
    ({"dimension": "384"}, "invalid manifest: dimension: Input should be a valid integer"),
])
def test_a_malformed_manifest_is_exit_4_naming_the_file(capsys, index_dir, changes, reason):
    manifest = edit_manifest(index_dir, **changes)
    code, out, err = run_cli(capsys, "index", "search", "--index", str(index_dir), "hello")
    assert code == 4 and out == "" and "unexpected" not in err
    assert len(err.strip().splitlines()) == 1 and reason in err
    assert f"error: {index_dir}/" in err or f"error: {manifest}" in err


def test_a_checksum_entry_outside_the_index_is_refused(capsys, index_dir, tmp_path):
    import hashlib

    secret = tmp_path / "secret.txt"
    secret.write_text("outside the index")
    manifest = json.loads((index_dir / "csbot-index.json").read_text())
    edit_manifest(index_dir, checksums={**manifest["checksums"],
                                        "../secret.txt": hashlib.sha256(secret.read_bytes()).hexdigest()})
    code, _, err = run_cli(capsys, "index", "stats", "--index", str(index_dir))
    assert code == 4
    assert err.startswith(f"error: {index_dir / 'csbot-index.json'}: invalid manifest: checksums")
    assert "not a relative path inside the artefact directory" in err
