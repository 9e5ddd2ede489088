"""``csbot transcripts show`` and ``tail``: a conversation printed, JSON lines, errors, the live tail."""

from __future__ import annotations

import json
import threading
import time

import pytest

from bot.cli import main
from bot.transcripts import JsonlTranscriptLog
from csbot.transcripts import TranscriptTurn


def turn(session: str, seq: int, text: str, reply: str, **extra) -> TranscriptTurn:
    return TranscriptTurn(
        session_id=session, channel="web", user_text=text, decision=extra.pop("decision", "template"),
        source=extra.pop("source", "template"), reply={"messages": [{"text": reply, **extra.pop("bubble", {})}],
                                                       "source": "template", "handoff": False},
        parse={"intent": {"name": extra.pop("intent", "greet"), "confidence": 0.87},
               "entities": extra.pop("entities", [])},
        turn=seq, timestamp=1_714_557_600.0 + seq, **extra,
    )


@pytest.fixture
def log_path(tmp_path):
    path = tmp_path / "t.jsonl"
    log = JsonlTranscriptLog(path)
    log.write(turn("alice", 1, "hello there", "Hi! How can I help?",
                   bubble={"buttons": [{"title": "Track an order", "payload": "/track"},
                                       {"title": "Talk to a person", "payload": "/handoff"}]}))
    log.write(turn("bob", 1, "bob says hi", "Hello Bob"))
    log.write(turn("alice", 2, "where is order 48213", "Order 48213 ships tomorrow.", intent="track_order",
                   decision="retrieve", source="retrieval",
                   entities=[{"entity": "order_id", "value": "48213", "start": 15, "end": 20}]))
    for seq in range(2, 6):
        log.write(turn("bob", seq, f"bob message {seq}", f"bob reply {seq}"))
    return path


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_show_prints_the_conversation(capsys, log_path):
    code, out, err = run_cli(capsys, "transcripts", "show", "alice", "--log", str(log_path))
    assert code == 0, err
    for expected in ("session alice", "2 turns", "customer: hello there", "greet 0.87", "Hi! How can I help?",
                     "[Track an order]", "[Talk to a person]", "customer: where is order 48213", "track_order 0.87",
                     "order_id=48213", "retrieve/retrieval", "bot: Order 48213 ships tomorrow."):
        assert expected in out, expected
    assert "bob" not in out
    assert out.index("hello there") < out.index("where is order")


def test_show_json_lines_parse(capsys, log_path):
    code, out, _ = run_cli(capsys, "transcripts", "show", "bob", "--log", str(log_path), "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["turn"] for r in rows] == [1, 2, 3, 4, 5] and {r["session_id"] for r in rows} == {"bob"}
    assert TranscriptTurn.from_dict(rows[0]).user_text == "bob says hi"


def test_show_takes_the_log_from_the_config(capsys, log_path, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"transcripts:\n  path: {log_path}\n")
    code, out, _ = run_cli(capsys, "transcripts", "show", "alice", "--config", str(config), "--json")
    assert code == 0 and len(out.splitlines()) == 2
    (tmp_path / "conf").mkdir()
    config = tmp_path / "conf" / "c.yaml"
    config.write_text(f"transcripts:\n  path: ../{log_path.name}\n")  # relative to the config's folder
    code, out, _ = run_cli(capsys, "transcripts", "tail", "--no-follow", "-n", "1", "--config", str(config), "--json")
    assert code == 0 and json.loads(out)["user_text"] == "bob message 5"


@pytest.mark.parametrize("args", [("show", "carol"), ("show", "alice", "--log", "{missing}"),
                                  ("tail", "--no-follow", "--log", "{missing}")])
def test_unknown_session_or_log_is_one_error_line(capsys, log_path, tmp_path, args):
    args = [a.replace("{missing}", str(tmp_path / "none.jsonl")) for a in args]
    if "--log" not in args:
        args += ["--log", str(log_path)]
    code, out, err = run_cli(capsys, "transcripts", *args)
    assert code != 0 and out == ""
    [line] = err.strip().splitlines()
    assert line.startswith("error: ") and ("carol" in line or "none.jsonl" in line)


def test_tail_prints_the_last_turns(capsys, log_path):
    code, out, _ = run_cli(capsys, "transcripts", "tail", "--log", str(log_path), "--no-follow", "-n", "3")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 3
    assert ["bob message 3" in lines[0], "bob message 4" in lines[1], "bob message 5" in lines[2]] == [True] * 3
    assert "bob reply 5" in lines[2] and "greet 0.87" in lines[2]
    code, out, _ = run_cli(capsys, "transcripts", "tail", "--log", str(log_path), "--no-follow", "--session", "alice",
                           "--lines", "5", "--json")
    assert [json.loads(line)["turn"] for line in out.splitlines()] == [1, 2]


def test_tail_follow_prints_a_turn_appended_meanwhile(capsys, log_path):
    def later() -> None:
        time.sleep(0.3)
        JsonlTranscriptLog(log_path).write(turn("dave", 1, "a live question", "a live answer"))

    thread = threading.Thread(target=later)
    thread.start()
    started = time.monotonic()
    code, out, _ = run_cli(capsys, "transcripts", "tail", "--log", str(log_path), "-n", "1", "--follow",
                           "--timeout", "1")
    thread.join()
    lines = out.strip().splitlines()
    assert code == 0 and 0.9 < time.monotonic() - started < 5
    assert len(lines) == 2 and "bob message 5" in lines[0]
    assert "dave" in lines[1] and "a live question" in lines[1] and "a live answer" in lines[1]


def tear(path, text: bytes = b'{"session_id":"alice","channel":"web","user_te') -> int:
    """Leave half a record at the end of the log, as a crash or a full disk does; its line number."""
    with open(path, "ab") as file:
        file.write(text)
    return len(path.read_bytes().split(b"\n"))


def test_show_and_tail_skip_a_torn_line_and_note_it(capsys, log_path):
    torn_line = tear(log_path)
    JsonlTranscriptLog(log_path).write(turn("alice", 3, "still there?", "Yes, I'm here."))
    code, out, err = run_cli(capsys, "transcripts", "show", "alice", "--log", str(log_path))
    assert code == 0, err
    assert "3 turns" in out and "customer: hello there" in out and "bot: Yes, I'm here." in out
    [note] = err.strip().splitlines()
    assert note.startswith(f"note: {log_path}:{torn_line}: skipped a torn or corrupt line (not JSON: ")
    code, out, err = run_cli(capsys, "transcripts", "tail", "--log", str(log_path), "--no-follow", "-n", "3")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 3 and "still there?" in lines[-1]
    [note] = err.strip().splitlines()
    assert note.startswith(f"note: {log_path}:{torn_line}: skipped a torn or corrupt line")
    code, out, err = run_cli(capsys, "transcripts", "show", "bob", "--log", str(log_path), "--json")
    assert code == 0 and [json.loads(line)["turn"] for line in out.splitlines()] == [1, 2, 3, 4, 5]


def test_show_sums_up_many_skipped_lines_in_one_note(capsys, log_path):
    with open(log_path, "ab") as file:
        file.write(b"garbage\n" * 7 + b"\xff\xfe\n")
    code, out, err = run_cli(capsys, "transcripts", "show", "alice", "--log", str(log_path))
    assert code == 0 and "2 turns" in out
    [note] = err.strip().splitlines()
    assert note == (f"note: skipped 8 torn or corrupt lines of the transcript log: {log_path}:8, {log_path}:9, "
                    f"{log_path}:10, {log_path}:11, {log_path}:12 and 3 more")


def test_json_output_keeps_one_turn_per_line_whatever_the_text(capsys, tmp_path):
    path = tmp_path / "t.jsonl"
    odd = "line\u2028separator\u2029paragraph\x85next"
    JsonlTranscriptLog(path).write(turn("carol", 1, odd, odd))
    code, out, _ = run_cli(capsys, "transcripts", "show", "carol", "--log", str(path), "--json")
    [line] = out.splitlines()
    assert code == 0 and json.loads(line)["user_text"] == odd
    code, out, _ = run_cli(capsys, "transcripts", "tail", "--log", str(path), "--no-follow", "--json")
    [line] = out.splitlines()
    assert code == 0 and json.loads(line)["reply"]["messages"][0]["text"] == odd
