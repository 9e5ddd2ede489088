"""``csbot transcripts export`` and ``csbot review import``: a log the bot wrote, a scripted reviewer, the import."""

from __future__ import annotations

import json

import pytest

from bot.cli import main
from bot.transcripts import JsonlTranscriptLog
from csbot.transcripts import TranscriptTurn
from retrieval.sources import load_records
from training.data import load_dataset

BASE = 1_714_557_600.0


def parse(intent: str, ranking: list[tuple[str, float]], **extra) -> dict:
    return {"intent": {"name": intent, "confidence": ranking[0][1]},
            "intent_ranking": [{"name": n, "confidence": c} for n, c in ranking],
            "entities": extra.pop("entities", []), "out_of_scope": extra.pop("out_of_scope", False), **extra}


def customer(session: str, seq: int, text: str, parsed: dict | None, source: str = "template", code: str = "",
             handoff: bool = False) -> TranscriptTurn:
    return TranscriptTurn(session_id=session, channel="web", user_text=text, decision=source, source=source,
                          reply={"messages": [{"text": "a reply"}], "source": source, "handoff": handoff},
                          parse=parsed, turn=seq, code=code, versions={"nlu": "v2", "index": "i1"},
                          timestamp=BASE + seq)


def agent(session: str, seq: int, text: str) -> TranscriptTurn:
    return TranscriptTurn(session_id=session, channel="web", user_text="", decision="agent ann wrote to the customer",
                          source="agent", reply={"messages": [{"text": text}], "source": "agent", "handoff": True},
                          turn=seq, author="ann", timestamp=BASE + seq)


@pytest.fixture
def log_path(tmp_path):
    path = tmp_path / "transcripts.jsonl"
    log = JsonlTranscriptLog(path)
    order = [{"entity": "order_id", "value": "48213", "start": 15, "end": 20, "confidence": 0.8}]
    for turn in [
        customer("a", 1, "hello", parse("greet", [("greet", 0.99)])),
        customer("a", 2, "where is order 48213", parse("track_order", [("track_order", 0.41), ("refund", 0.39)],
                                                       entities=order), source="retrieve", code="low_confidence"),
        customer("b", 1, "Where is order 48213?", parse("track_order", [("track_order", 0.45), ("refund", 0.4)],
                                                        entities=order), source="retrieve", code="low_confidence"),
        customer("b", 2, "I want my money back", parse("track_order", [("track_order", 0.35), ("refund", 0.33)]),
                 source="retrieve", code="low_confidence"),
        customer("c", 1, "what is the meaning of life", parse("greet", [("greet", 0.3)], out_of_scope=True),
                 source="fallback", code="out_of_scope"),
        customer("c", 2, "asdf qwer", parse("greet", [("greet", 0.2), ("refund", 0.19)]), source="fallback"),
        customer("d", 1, "get me a person, my card was charged twice", parse("human_handoff", [("human_handoff", 0.97)]),
                 source="handoff", code="asked_for_person", handoff=True),
        agent("d", 2, "I have refunded the second charge."),
    ]:
        log.write(turn)
    return path


@pytest.fixture
def model_dir(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "labels.json").write_text(json.dumps({
        "intents": ["greet", "human_handoff", "out_of_scope", "refund", "track_order"], "slot_types": ["order_id"],
        "multi_label": False, "allows_empty": False, "oos_label": "out_of_scope",
        "tags": ["O", "B-order_id", "I-order_id"]}))
    return folder


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def review(path, decide) -> None:
    """A scripted reviewer: ``decide(line) -> None`` edits each line in place."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for line in lines:
        decide(line)
        line["review"]["reviewer"] = "rita"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def scripted(line: dict) -> None:
    text, r = line["text"], line["review"]
    if line["kind"] == "qa":
        r["decision"] = "accept"
    elif text == "I want my money back":
        line["intent"], r["decision"] = "refund", "relabel"
    elif text == "what is the meaning of life":
        r["decision"] = "out_of_scope"
    elif text == "asdf qwer":
        r["decision"] = "skip"
    else:
        r["decision"] = "accept"


def test_export_then_import_round_trip(capsys, tmp_path, log_path, model_dir):
    out = tmp_path / "review.jsonl"
    code, stdout, err = run_cli(capsys, "transcripts", "export", "--log", str(log_path), "--select", "all",
                                "--out", str(out))
    assert code == 0, err
    assert "read 8 turns from 1 log; selected 7 (all)" in stdout
    assert "merged 1 near-duplicates of 8 candidates; wrote 7 items" in stdout
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {line["text"] for line in lines} == {
        "hello", "where is order 48213", "I want my money back", "what is the meaning of life", "asdf qwer",
        "get me a person, my card was charged twice"}  # and the Q&A candidate of the hand-over
    assert "" not in {line["text"] for line in lines}  # the agent's message is no example
    order = next(line for line in lines if line["text"] == "where is order 48213")
    assert order["review"]["count"] == 2 and order["review"]["sessions"] == ["a", "b"]
    assert order["entities"] == [{"start": 15, "end": 20, "entity": "order_id", "value": "48213"}]
    assert order["review"]["decision"] is None and order["review"]["model_version"] == "v2"
    qa = [line for line in lines if line["kind"] == "qa"]
    assert [(q["text"], q["answer"]) for q in qa] == [
        ("get me a person, my card was charged twice", "I have refunded the second charge.")]

    review(out, scripted)
    reviewed = tmp_path / "reviewed"
    code, stdout, err = run_cli(capsys, "review", "import", str(out), "--model", str(model_dir),
                                "--out", str(reviewed))
    assert code == 0, err
    assert "accept 4, out_of_scope 1, relabel 1, skip 1" in stdout
    examples = load_dataset([reviewed / "examples.jsonl"])
    assert sorted((e.text, e.intent) for e in examples) == [
        ("I want my money back", "refund"), ("get me a person, my card was charged twice", "human_handoff"),
        ("hello", "greet"), ("where is order 48213", "track_order")]
    assert [(e.text, e.intent) for e in load_dataset([reviewed / "out_of_scope.jsonl"])] == [
        ("what is the meaning of life", "out_of_scope")]  # the model's own out-of-scope label
    assert [r.answer for r in load_records(reviewed / "qa.jsonl")] == ["I have refunded the second charge."]
    summary = json.loads((reviewed / "decisions.json").read_text())
    assert summary["reviewers"] == ["rita"] and summary["files"] == [str(out)]


def test_export_selects_and_limits(capsys, tmp_path, log_path):
    out = tmp_path / "review.jsonl"
    code, stdout, err = run_cli(capsys, "transcripts", "export", "--log", str(log_path), "--out", str(out),
                                "--limit", "2", "--score", "entropy")
    assert code == 0, err
    assert "selected 5 (low-confidence)" in stdout
    texts = [json.loads(line)["text"] for line in out.read_text().splitlines()]
    # two intents were guessed (track_order and greet): the budget of two goes one to each
    assert len(texts) == 2
    assert {json.loads(line)["review"]["predicted_intent"] for line in out.read_text().splitlines()} == {
        "track_order", "greet"}
    code, _, err = run_cli(capsys, "transcripts", "export", "--log", str(log_path), "--out", str(out),
                           "--since", "next tuesday")
    assert code == 2 and "--since" in err


def test_export_with_helpdesk_history(capsys, tmp_path, log_path):
    history = tmp_path / "history.csv"
    history.write_text("conversation_id,role,text\nk1,customer,Do you ship to Iceland?\nk1,agent,Yes we do.\n")
    out = tmp_path / "review.jsonl"
    code, stdout, err = run_cli(capsys, "transcripts", "export", "--log", str(log_path), "--helpdesk", str(history),
                                "--select", "fallback", "--out", str(out))
    assert code == 0, err
    assert "helpdesk: 2 items from 1 file(s)" in stdout
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    helpdesk = sorted((line["kind"], line["review"]["source"]) for line in lines if line["review"]["source"] == "helpdesk")
    assert helpdesk == [("example", "helpdesk"), ("qa", "helpdesk")]


def test_a_bad_line_writes_nothing(capsys, tmp_path, log_path, model_dir):
    out = tmp_path / "review.jsonl"
    assert run_cli(capsys, "transcripts", "export", "--log", str(log_path), "--select", "all", "--out", str(out))[0] == 0

    def careless(line):
        scripted(line)
        if line["text"] == "I want my money back":
            line["intent"] = "refnud"  # a typo: no such intent

    review(out, careless)
    bad_line = 1 + [json.loads(x)["text"] for x in out.read_text().splitlines()].index("I want my money back")
    reviewed = tmp_path / "reviewed"
    code, stdout, err = run_cli(capsys, "review", "import", str(out), "--model", str(model_dir), "--out", str(reviewed))
    assert code == 3
    assert f"error: {out}:{bad_line}: unknown intent 'refnud'" in err
    assert not reviewed.exists()
    code, stdout, err = run_cli(capsys, "review", "import", str(out), "--model", str(model_dir), "--out", str(reviewed),
                                "--allow-new-labels")
    assert code == 0, err
    assert "new intents: refnud" in stdout


def test_import_needs_a_model_with_label_maps(capsys, tmp_path):
    out = tmp_path / "review.jsonl"
    out.write_text("")
    code, _, err = run_cli(capsys, "review", "import", str(out), "--model", str(tmp_path / "nowhere"))
    assert code == 4 and "labels.json" in err


def test_export_takes_the_log_from_the_config(capsys, tmp_path, log_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"transcripts:\n  path: {log_path}\n")
    out = tmp_path / "review.jsonl"
    code, stdout, err = run_cli(capsys, "transcripts", "export", "--config", str(config), "--out", str(out))
    assert code == 0, err
    assert "read 8 turns from 1 log" in stdout and out.exists()
    config.write_text(f"transcripts:\n  path: {tmp_path / 'none.jsonl'}\n")
    code, _, err = run_cli(capsys, "transcripts", "export", "--config", str(config), "--out", str(out))
    assert code == 7 and "no transcript log here" in err
