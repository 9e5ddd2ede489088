"""The transcript log under hostile bytes: garbage between records never costs a good record, nor raises.

Garbage stands for what a crash, a full disk or a stray tool leaves in the file: any bytes, invalid UTF-8,
stray newlines, half records, JSON that is not a turn. It is written straight into the file, without a
final newline; good records go through :class:`JsonlTranscriptLog`, which must start each on a fresh line.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.transcripts import JsonlTranscriptLog
from csbot.transcripts import SkippedLine, TranscriptTurn, follow, iter_turns, log_files, turn_to_json

pytestmark = pytest.mark.properties

texts = st.text(max_size=40)  # any code point but surrogates: U+2028, U+0085, NUL, emoji alike
turns = st.builds(
    TranscriptTurn,
    session_id=st.sampled_from(["a", "b", "c\u2028d"]),
    channel=st.just("web"),
    user_text=texts,
    decision=st.just("template"),
    source=st.just("template"),
    reply=st.builds(lambda text: {"messages": [{"text": text}]}, texts),
    turn=st.integers(0, 10_000),
    timestamp=st.just(1_714_557_600.5),
)
half_records = st.builds(lambda turn, cut: turn_to_json(turn).encode()[: cut][:-1], turns, st.integers(1, 400))
garbage = st.one_of(
    st.binary(max_size=60),
    half_records,  # a record torn mid-write
    st.sampled_from([b"{}", b"[1]", b"null", b'{"session_id":"a"}', b"\xef\xbb\xbf{}", b"\n\n", b"\r\n", b"\xff"]),
)
segments = st.lists(st.one_of(st.tuples(st.just("turn"), turns), st.tuples(st.just("garbage"), garbage)),
                    max_size=25)


def expected_skips(path: Path, good_lines: set[bytes]) -> list[tuple[Path, int]]:
    """Every non-blank line that is not a good record; the newline-less end of the current file is not
    one yet (an append in progress, to a reader)."""
    out = []
    for file in log_files(path):
        lines = file.read_bytes().split(b"\n")
        if file == path:
            lines = lines[:-1]
        out += [(file, number) for number, line in enumerate(lines, start=1)
                if line.strip() and line not in good_lines]
    return out


@given(segments, st.sampled_from([300, 1 << 20]))
def test_garbage_between_records_costs_no_good_record(parts, max_bytes):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.jsonl"
        log = JsonlTranscriptLog(path, max_bytes=max_bytes, backups=10_000)  # small: rotates between records
        written: list[TranscriptTurn] = []
        for kind, part in parts:
            if kind == "turn":
                log.write(part)
                written.append(part)
            else:
                with open(path, "ab") as file:
                    file.write(part)
        skipped: list[SkippedLine] = []
        got = list(iter_turns(path, on_skip=skipped.append))
        assert [t.to_dict() for t in got] == [t.to_dict() for t in written]
        good_lines = {turn_to_json(t).encode() for t in written}
        assert [(s.path, s.line) for s in skipped] == expected_skips(path, good_lines)
        assert not any(s.recovered for s in skipped)
        followed = list(follow(path, last=len(written) + 1, stop=lambda: True, on_skip=lambda s: None))
        assert [t.to_dict() for t in followed] == [t.to_dict() for t in written]
        for session in ("a", "c\u2028d"):
            assert [t.turn for t in iter_turns(path, session, on_skip=lambda s: None)] == [
                t.turn for t in written if t.session_id == session]


@given(st.binary(max_size=2000), st.binary(max_size=200))
def test_any_bytes_at_all_read_without_an_error(current, rotated):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.jsonl"
        path.write_bytes(current)
        Path(f"{path}.1").write_bytes(rotated)
        skipped: list[SkippedLine] = []
        got = list(iter_turns(path, on_skip=skipped.append))
        assert all(isinstance(t, TranscriptTurn) for t in got)
        assert all(s.line >= 1 and s.path in (path, Path(f"{path}.1")) for s in skipped)
        list(follow(path, last=10, stop=lambda: True, on_skip=lambda s: None))
