"""The JSONL transcript log: round trip, torn and malformed lines, rotation, many writers at once, following live."""

from __future__ import annotations

import asyncio
import builtins
import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import REPO
from transcript_writer import make_turn

from bot.transcripts import JsonlTranscriptLog
from csbot.errors import ConfigError, StoreError
from csbot.transcripts import SkippedLine, TranscriptTurn, follow, iter_turns, log_files
from csbot.transcripts import reader as reader_module

WRITER_SCRIPT = Path(__file__).with_name("transcript_writer.py")


def append_all(log: JsonlTranscriptLog, turns: list[TranscriptTurn]) -> None:
    async def go() -> None:
        for turn in turns:
            await log.append(turn)
        await log.close()

    asyncio.run(go())


def test_round_trip_keeps_every_field(tmp_path):
    path = tmp_path / "logs" / "t.jsonl"  # the folder is created on first write
    turns = [
        TranscriptTurn(session_id="a", channel="web", user_text="où est ma commande\n48213 ?", decision="retrieve",
                       source="retrieval", reply={"messages": [{"text": "It ships\ntoday", "buttons": [
                           {"title": "Track", "payload": "/track"}]}], "source": "retrieve", "handoff": False},
                       parse={"intent": {"name": "track_order", "confidence": 0.91}, "entities": []},
                       hits=[{"id": "q1", "score": 0.83}], latency_ms=12.5, versions={"nlu": "abc"}, turn=1),
        make_turn("b", 0),
        make_turn("a", 2),
    ]
    append_all(JsonlTranscriptLog(path), turns)
    assert [t.to_dict() for t in iter_turns(path)] == [t.to_dict() for t in turns]
    assert len(path.read_text(encoding="utf-8").splitlines()) == 3  # newlines inside texts stay escaped
    assert [t.turn for t in iter_turns(path, session_id="a")] == [1, 2]
    assert list(iter_turns(path, session_id="nobody")) == []


def test_missing_log_reads_as_empty(tmp_path):
    assert list(iter_turns(tmp_path / "none.jsonl")) == []
    assert log_files(tmp_path / "none.jsonl") == []


def read_all(path, **kwargs) -> tuple[list[TranscriptTurn], list[SkippedLine]]:
    """Every turn of the log, and the lines the reader skipped."""
    skipped: list[SkippedLine] = []
    return list(iter_turns(path, on_skip=skipped.append, **kwargs)), skipped


@pytest.mark.parametrize("bad", [b'{"session_id": broken', b"[1, 2]", b'{"session_id": "a"}', b"\xff",
                                 b'{"session_id":"a","channel":"c","user_text":"u","decision":"d","source":"s",'
                                 b'"reply":[]}', b'"\xc3\xa9t\xe9"', b"[" * 100_000])
def test_a_malformed_line_is_skipped_and_reported_with_file_and_line(tmp_path, caplog, bad):
    path = tmp_path / "t.jsonl"
    append_all(JsonlTranscriptLog(path), [make_turn("a", 0), make_turn("a", 1)])
    with open(path, "ab") as file:
        file.write(bad + b"\n")
    append_all(JsonlTranscriptLog(path), [make_turn("a", 3)])
    turns, [skipped] = read_all(path)
    assert [t.turn for t in turns] == [0, 1, 3]  # the rest of the log still reads
    assert (skipped.path, skipped.line, skipped.recovered) == (path, 3, False)
    assert str(skipped).startswith(f"{path}:3: skipped a torn or corrupt line (")
    assert [t.turn for t in iter_turns(path)] == [0, 1, 3]  # by default: one warning per skipped line
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert warning.getMessage() == str(skipped)


def test_a_malformed_line_in_a_rotated_file_is_reported_with_that_file(tmp_path):
    path = tmp_path / "t.jsonl"
    append_all(JsonlTranscriptLog(path), [make_turn("a", 0)])
    with open(path, "a") as file:
        file.write("not json\n")
    os.replace(path, f"{path}.1")
    append_all(JsonlTranscriptLog(path), [make_turn("a", 2)])
    turns, [skipped] = read_all(path)
    assert [t.turn for t in turns] == [0, 2]
    assert str(skipped).startswith(f"{path}.1:2: skipped a torn or corrupt line (not JSON")


def test_an_append_after_a_torn_line_starts_on_a_fresh_line(tmp_path, caplog):
    """A crash (or a full disk) tore the last line; the next append must neither glue onto it nor be lost."""
    path = tmp_path / "t.jsonl"
    append_all(JsonlTranscriptLog(path), [make_turn("a", 0), make_turn("b", 1)])
    torn = json.dumps(make_turn("a", 2).to_dict()).encode()[:40]
    with open(path, "ab") as file:
        file.write(torn)  # half a record, no newline: the writer died here
    assert [t.turn for t in iter_turns(path)] == [0, 1]  # the torn tail may be an append in progress: quiet
    append_all(JsonlTranscriptLog(path), [make_turn("a", 3), make_turn("b", 4)])
    assert path.read_bytes().split(b"\n")[2] == torn  # still its own line
    turns, [skipped] = read_all(path)
    assert [(t.session_id, t.turn) for t in turns] == [("a", 0), ("b", 1), ("a", 3), ("b", 4)]
    assert (skipped.line, skipped.recovered) == (3, False)
    assert [t.turn for t in iter_turns(path, session_id="a", on_skip=lambda s: None)] == [0, 3]
    assert any("last line was torn" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_a_torn_line_is_ended_before_the_file_is_rotated(tmp_path):
    path = tmp_path / "t.jsonl"
    log = JsonlTranscriptLog(path, max_bytes=400, backups=3)  # a turn is ~260 bytes: the next one rotates
    log.write(make_turn("a", 0))
    with open(path, "ab") as file:
        file.write(b'{"session_id":"a","chan')
    log.write(make_turn("a", 1))
    assert Path(f"{path}.1").read_bytes().endswith(b'}\n{"session_id":"a","chan\n')  # rotated as whole lines
    turns, [skipped] = read_all(path)
    assert [t.turn for t in turns] == [0, 1] and (skipped.path, skipped.line) == (Path(f"{path}.1"), 2)


def test_a_turn_glued_onto_a_torn_line_by_an_older_writer_is_recovered(tmp_path):
    path = tmp_path / "t.jsonl"
    good = [json.dumps(make_turn("a", i).to_dict(), separators=(",", ":")).encode() for i in range(4)]
    path.write_bytes(good[0] + b"\n" + good[1][:30] + good[2] + b"\n" + good[3] + b"\n")  # as HEAD's writer left it
    turns, [skipped] = read_all(path)
    assert [t.turn for t in turns] == [0, 2, 3]
    assert (skipped.line, skipped.recovered) == (2, True) and "recovered" in str(skipped)


def test_line_separators_in_texts_round_trip_and_stay_on_one_line(tmp_path):
    """U+2028, U+2029 and U+0085 are line ends to ``str.splitlines``, never to the log."""
    path = tmp_path / "t.jsonl"
    odd = "one\u2028two\u2029three\x85four\r\nfive\x0bsix\x1cseven"
    turns = [TranscriptTurn(session_id="a\u2028b", channel="web", user_text=odd, decision="d", source="s",
                            reply={"messages": [{"text": odd}]}, turn=i) for i in range(3)]
    append_all(JsonlTranscriptLog(path), turns)
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) == 3  # any line-oriented tool sees one line per turn
    got, skipped = read_all(path)
    assert [t.to_dict() for t in got] == [t.to_dict() for t in turns] and skipped == []
    assert [t.user_text for t in follow(path, last=5, stop=lambda: True)] == [odd] * 3
    raw = json.dumps(turns[0].to_dict(), ensure_ascii=False).encode()  # an older writer left them raw
    assert "\u2028".encode() in raw
    with open(path, "ab") as file:
        file.write(raw + b"\n")
    got, skipped = read_all(path, session_id="a\u2028b")
    assert [t.user_text for t in got] == [odd] * 4 and skipped == []


def test_an_unreadable_log_file_is_a_store_error(tmp_path, monkeypatch):
    path = tmp_path / "t.jsonl"
    append_all(JsonlTranscriptLog(path), [make_turn("a", 0)])

    def refuse(name, *args, **kwargs):
        if Path(name) == path:
            raise PermissionError(13, "Permission denied")
        return builtins.open(name, *args, **kwargs)

    monkeypatch.setattr(reader_module, "open", refuse, raising=False)
    with pytest.raises(StoreError, match=r"t\.jsonl: cannot read the transcript log: Permission denied"):
        list(iter_turns(path))


def test_invalid_sizes_are_config_errors(tmp_path):
    with pytest.raises(ConfigError):
        JsonlTranscriptLog(tmp_path / "t.jsonl", max_bytes=0)
    with pytest.raises(ConfigError):
        JsonlTranscriptLog(tmp_path / "t.jsonl", backups=-1)


def test_unwritable_path_and_closed_log_raise_store_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="cannot write the transcript log"):
        append_all(JsonlTranscriptLog(tmp_path / "file" / "t.jsonl"), [make_turn("a", 0)])
    log = JsonlTranscriptLog(tmp_path / "t.jsonl")
    append_all(log, [make_turn("a", 0)])  # closes it
    with pytest.raises(StoreError, match="closed"):
        log.write(make_turn("a", 1))


def test_rotation_keeps_backups_and_reads_oldest_first(tmp_path):
    path = tmp_path / "t.jsonl"
    turns = [make_turn("a", i) for i in range(60)]
    line_bytes = [len(json.dumps(t.to_dict()).encode()) for t in turns]
    max_bytes = 1000
    append_all(JsonlTranscriptLog(path, max_bytes=max_bytes, backups=3), turns)

    files = log_files(path)
    assert files == [Path(f"{path}.3"), Path(f"{path}.2"), Path(f"{path}.1"), path]
    assert not Path(f"{path}.4").exists()  # the oldest were dropped
    for file in files:
        assert 0 < file.stat().st_size <= max_bytes
    kept = [t.turn for t in iter_turns(path)]
    assert kept == list(range(60 - len(kept), 60))  # the newest, complete and in order
    assert sum(line_bytes[-len(kept):]) > 3 * max_bytes // 2  # several files' worth, not one


def test_rotation_with_enough_backups_loses_nothing(tmp_path):
    path = tmp_path / "t.jsonl"
    append_all(JsonlTranscriptLog(path, max_bytes=700, backups=50), [make_turn("a", i) for i in range(80)])
    assert len(log_files(path)) > 10
    assert [t.turn for t in iter_turns(path)] == list(range(80))


def test_no_backups_keeps_only_the_current_file(tmp_path):
    path = tmp_path / "t.jsonl"
    append_all(JsonlTranscriptLog(path, max_bytes=500, backups=0), [make_turn("a", i) for i in range(30)])
    assert log_files(path) == [path]
    kept = [t.turn for t in iter_turns(path)]
    assert kept[-1] == 29 and 0 < len(kept) < 30


def test_writer_reopens_the_file_another_writer_rotated(tmp_path):
    path = tmp_path / "t.jsonl"
    first = JsonlTranscriptLog(path, max_bytes=100_000, backups=10)  # would never rotate by itself
    second = JsonlTranscriptLog(path, max_bytes=400, backups=10)
    first.write(make_turn("first", 0))
    for i in range(6):  # rotates the file ``first`` still has open
        second.write(make_turn("second", i))
    assert Path(f"{path}.1").exists()
    first.write(make_turn("first", 1))  # goes to the new current file, found by its inode
    assert json.loads(path.read_text().splitlines()[-1])["session_id"] == "first"  # not into a rotated file
    assert [(t.session_id, t.turn) for t in iter_turns(path)][-1] == ("first", 1)


def test_concurrent_threads_and_processes_never_tear_or_reorder(tmp_path):
    """8 threads (4 sharing one log object, 4 with their own) and 4 processes, 200 turns each, rotating often."""
    path = tmp_path / "t.jsonl"
    count, max_bytes, backups = 200, 8192, 1000
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, str(WRITER_SCRIPT), str(path), f"p{i}", str(count), str(max_bytes),
                          str(backups)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env, cwd=REPO)
        for i in range(4)
    ]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        shared = JsonlTranscriptLog(path, max_bytes, backups)
        start = threading.Barrier(9)
        errors: list[BaseException] = []

        def write(name: str, log: JsonlTranscriptLog) -> None:
            try:
                start.wait()
                for seq in range(count):
                    log.write(make_turn(name, seq))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(f"t{i}", shared if i < 4 else JsonlTranscriptLog(
            path, max_bytes, backups))) for i in range(8)]
        for thread in threads:
            thread.start()
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        start.wait()
        for thread in threads:
            thread.join(60)
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0 and out.strip() == "done", err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert not errors

    files = log_files(path)
    assert len(files) > 20  # it rotated many times while all of them wrote
    seqs: dict[str, list[int]] = defaultdict(list)
    for file in files:
        data = file.read_bytes()
        assert len(data) <= max_bytes and data.endswith(b"\n"), file
        for raw in data.split(b"\n")[:-1]:
            turn = json.loads(raw)  # a torn or interleaved line fails here
            expected = make_turn(turn["session_id"], turn["turn"])
            assert turn["user_text"] == expected.user_text and turn["reply"] == expected.reply
            seqs[turn["session_id"]].append(turn["turn"])
    writers = {f"p{i}" for i in range(4)} | {f"t{i}" for i in range(8)}
    assert set(seqs) == writers
    for name in writers:
        assert seqs[name] == list(range(count)), name  # none lost, none repeated, in its own order
    assert sum(1 for _ in iter_turns(path)) == 12 * count


def _collect(gen, want: int) -> list[TranscriptTurn]:
    got = []
    for turn in gen:
        got.append(turn)
        if len(got) >= want:
            break
    gen.close()
    return got


def test_follow_sees_every_turn_through_rotations(tmp_path):
    """Bursts rotate the log several times between two polls; slow writes rotate it while the follower waits."""
    path = tmp_path / "t.jsonl"
    writer = JsonlTranscriptLog(path, max_bytes=1000, backups=500)
    writer.write(make_turn("before", 0))
    deadline = time.monotonic() + 10
    turns = follow(path, poll=0.1, stop=lambda: time.monotonic() > deadline, last=1)
    assert next(turns).session_id == "before"  # the follower has its starting point now

    def produce() -> None:
        for seq in range(300):
            writer.write(make_turn("w", seq))
            if seq % 60 == 59:
                time.sleep(0.25)  # idle follower, then a burst of ~12 rotations before its next poll
            elif seq >= 240:
                time.sleep(0.003)

    thread = threading.Thread(target=produce)
    thread.start()
    got = _collect(turns, 300)
    thread.join()
    assert [(t.session_id, t.turn) for t in got] == [("w", i) for i in range(300)]
    assert len(log_files(path)) > 30


def test_follow_waits_for_the_log_and_filters_by_session(tmp_path):
    path = tmp_path / "later" / "t.jsonl"
    stop = threading.Event()
    turns = follow(path, session_id="s1", poll=0.02, stop=stop)

    def produce() -> None:
        time.sleep(0.1)
        log = JsonlTranscriptLog(path)
        for seq in range(6):
            log.write(make_turn(f"s{seq % 2}", seq))

    thread = threading.Thread(target=produce)
    thread.start()
    timer = threading.Timer(10, stop.set)
    timer.start()
    got = _collect(turns, 3)
    timer.cancel()
    thread.join()
    assert [(t.session_id, t.turn) for t in got] == [("s1", 1), ("s1", 3), ("s1", 5)]


def test_follow_last_reaches_into_rotated_files_and_stops(tmp_path):
    path = tmp_path / "t.jsonl"
    append_all(JsonlTranscriptLog(path, max_bytes=600, backups=40), [make_turn(f"s{i % 3}", i) for i in range(40)])
    assert len(log_files(path)) > 10  # the turns are spread over many rotated files
    assert [t.turn for t in follow(path, last=5, stop=lambda: True)] == [35, 36, 37, 38, 39]
    assert [t.turn for t in follow(path, "s0", last=8, stop=lambda: True)] == [15, 18, 21, 24, 27, 30, 33, 36, 39][-8:]
    assert [t.turn for t in follow(path, last=100, stop=lambda: True)] == list(range(40))
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    assert list(follow(path, poll=5, stop=stop)) == []  # an Event wakes the poll at once
    assert time.monotonic() - started < 2


def test_a_line_still_being_written_is_not_an_error_until_rotated(tmp_path):
    path = tmp_path / "t.jsonl"
    append_all(JsonlTranscriptLog(path), [make_turn("a", 0)])
    line = json.dumps(make_turn("a", 1).to_dict()).encode()
    with open(path, "ab") as file:
        file.write(line[:20])  # what a reader may see mid-append
    assert [t.turn for t in iter_turns(path)] == [0]
    deadline = time.monotonic() + 10
    turns = follow(path, poll=0.01, stop=lambda: time.monotonic() > deadline, last=1)
    assert next(turns).turn == 0  # started: the half line is read and waits for its end
    with open(path, "ab") as file:
        file.write(line[20:] + b"\n")
    assert next(turns).turn == 1  # joined, not parsed in halves
    turns.close()
    with open(path, "ab") as file:
        file.write(b'{"half')
    os.replace(path, f"{path}.1")
    turns, [skipped] = read_all(path)  # rotated away unfinished: torn, and now reported
    assert [t.turn for t in turns] == [0, 1] and (skipped.path, skipped.line) == (Path(f"{path}.1"), 3)


def test_follow_skips_a_torn_line_and_reports_it_once(tmp_path):
    path = tmp_path / "t.jsonl"
    log = JsonlTranscriptLog(path)
    log.write(make_turn("a", 0))
    skipped: list[SkippedLine] = []
    deadline = time.monotonic() + 10
    turns = follow(path, poll=0.01, stop=lambda: time.monotonic() > deadline, last=1, on_skip=skipped.append)
    assert next(turns).turn == 0
    with open(path, "ab") as file:
        file.write(b'{"session_id":"a","tur')  # a writer crashed here
    log.write(make_turn("a", 1))
    log.write(make_turn("a", 2))
    assert [next(turns).turn, next(turns).turn] == [1, 2]
    turns.close()
    assert [(s.path, s.line) for s in skipped] == [(path, 2)]
