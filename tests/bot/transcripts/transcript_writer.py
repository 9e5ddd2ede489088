"""A separate OS process appending turns to a JSONL transcript log, for the concurrent-writer test.

Usage: ``python transcript_writer.py LOG WRITER COUNT MAX_BYTES BACKUPS``. Prints ``ready``, waits for a
line on stdin (so all writers start together), appends COUNT turns numbered 0.. with the async API,
prints ``done``.
"""

from __future__ import annotations

import asyncio
import sys

from bot.transcripts.jsonl import JsonlTranscriptLog
from csbot.transcripts import TranscriptTurn


def make_turn(writer: str, seq: int) -> TranscriptTurn:
    """The turn a writer appends as its ``seq``-th; the padding makes lines long enough to rotate often."""
    return TranscriptTurn(
        session_id=writer, channel="test", user_text=f"{writer} message {seq} " + "x" * (seq % 37),
        decision="template", source="template", reply={"messages": [{"text": f"reply {seq}"}]}, turn=seq,
    )


async def main(path: str, writer: str, count: int, max_bytes: int, backups: int) -> None:
    log = JsonlTranscriptLog(path, max_bytes=max_bytes, backups=backups)
    print("ready", flush=True)
    sys.stdin.readline()
    for seq in range(count):
        await log.append(make_turn(writer, seq))
    await log.close()
    print("done", flush=True)


if __name__ == "__main__":
    log_path, name, n, size, keep = sys.argv[1:6]
    asyncio.run(main(log_path, name, int(n), int(size), int(keep)))
