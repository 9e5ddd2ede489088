"""Following a JSONL transcript log live, like ``tail -F``: new turns as they are appended, across rotation."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

from csbot.transcripts.reader import (
    LineReader,
    OnSkip,
    close_all,
    file_moved,
    open_log_files,
    parse_line,
    turns_of,
    warn_skipped,
)
from csbot.transcripts.record import TranscriptTurn


@runtime_checkable
class _Event(Protocol):
    """What ``stop`` may be besides a callable: a ``threading.Event`` or anything shaped like one."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


def follow(
    path: str | Path,
    session_id: str | None = None,
    poll: float = 0.2,
    stop: _Event | Callable[[], bool] | None = None,
    last: int = 0,
    on_skip: OnSkip = warn_skipped,
) -> Iterator[TranscriptTurn]:
    """Yield turns as they are appended to a log, like ``tail -F``; runs until ``stop`` says so.

    ``last`` > 0 first yields up to that many existing turns (of the session, when given); there is no
    gap or repeat between them and the live ones. ``stop`` is a ``threading.Event`` or a callable
    returning true to end; it is checked every ``poll`` seconds while idle. The log may not exist yet.
    Rotation is followed: when the path names a new file, the rest of the old one is read, then every
    file rotated in since (the log may have rotated several times between two polls), then the new one.
    A line that is not a turn (torn, corrupt) is skipped and reported to ``on_skip`` as
    :func:`~csbot.transcripts.iter_turns` does; a partial last line waits for its end.
    """
    path = Path(path)
    should_stop: Callable[[], bool]
    if stop is None:
        should_stop, wait = (lambda: False), time.sleep
    elif isinstance(stop, _Event):
        should_stop, wait = stop.is_set, stop.wait
    else:
        should_stop, wait = stop, time.sleep  # type: ignore[assignment]

    def matches(turn: TranscriptTurn | None) -> bool:
        return turn is not None and (session_id is None or turn.session_id == session_id)

    reader: LineReader | None = None
    opened = open_log_files(path)
    seen = {item.file_id for item in opened}
    try:
        if opened and opened[-1].current:
            reader = LineReader(opened.pop())
        recent: deque[TranscriptTurn] = deque(maxlen=max(last, 1))
        if reader is not None:
            while (lines := reader.chunk()) is not None:
                if last > 0:
                    recent.extend(t for t in (parse_line(raw, reader.path, n, on_skip) for n, raw in lines)
                                  if matches(t))
        if last > 0:
            older: list[TranscriptTurn] = []
            for item in reversed(opened):  # newest rotated file first, only as far back as needed
                if len(older) + len(recent) >= last:
                    break
                older = list(turns_of(LineReader(item), session_id, final=True, on_skip=on_skip)) + older
            close_all(opened)
            need = last - len(recent)
            yield from (older[-need:] if need > 0 else []) + list(recent)
        close_all(opened)

        while not should_stop():
            if reader is not None:
                progressed = False
                while (lines := reader.chunk()) is not None:
                    progressed = True
                    for number, raw in lines:
                        turn = parse_line(raw, reader.path, number, on_skip)
                        if matches(turn):
                            yield turn  # type: ignore[misc]
                    if should_stop():
                        return
                if progressed:
                    continue
                if not file_moved(path, reader.file_id):
                    wait(poll)
                    continue
                # Rotated or removed: finish the old file, then take in whatever is new.
                yield from turns_of(reader, session_id, final=True, on_skip=on_skip)
                reader.close()
                reader = None
            opened = open_log_files(path)
            unseen = [item for item in opened if item.file_id not in seen]
            seen = {item.file_id for item in opened}
            for item in unseen:
                if item.current:
                    reader = LineReader(item)
                    opened.remove(item)  # kept open by the reader
                else:
                    yield from turns_of(LineReader(item), session_id, final=True, on_skip=on_skip)
            close_all(opened)
            if reader is None:
                wait(poll)
    finally:
        close_all(opened)
        if reader is not None:
            reader.close()


__all__ = ["follow"]
