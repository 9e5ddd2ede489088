"""The JSONL transcript log: round trip, malformed lines, rotation, many writers at once, following live."""

from __future__ import annotations

import asyncio
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
from csbot.errors import ConfigError, DataError, StoreError
from csbot.transcripts import TranscriptTurn, follow, iter_turns, log_files

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


@pytest.mark.parametrize("bad", ['{"session_id": broken', "[1, 2]", '{"session_id": "a"}', "\xff"])
def test_malformed_line_names_file_and_line(tmp_path, bad):
    path = tmp_path / "t.jsonl"
    append_all(JsonlTranscriptLog(path), [make_turn("a", 0), make_turn("a", 1)])
    with open(path, "a", encoding="latin-1") as file:
        file.write(bad + "\n")
    append_all(JsonlTranscriptLog(path), [make_turn("a", 3)])
    with pytest.raises(DataError) as caught:
        list(iter_turns(path))
    assert caught.value.path == path and caught.value.line == 3
    assert str(caught.value).startswith(f"{path}:3: malformed transcript line")


def test_malformed_line_in_a_rotated_file_names_that_file(tmp_path):
    path = tmp_path / "t.jsonl"
    append_all(JsonlTranscriptLog(path), [make_turn("a", 0)])
    with open(path, "a") as file:
        file.write("not json\n")
    os.replace(path, f"{path}.1")
    append_all(JsonlTranscriptLog(path), [make_turn("a", 2)])
    with pytest.raises(DataError, match=r"t\.jsonl\.1:2: "):
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
    with pytest.raises(DataError, match=r"t\.jsonl\.1:3: "):
        list(iter_turns(path))
