"""Transcript records and reading them back: what the bot writes and training reads to retrain.

One :class:`TranscriptTurn` per turn, one line of JSON each (:func:`turn_to_json` / :func:`turn_from_json`).
:func:`iter_turns` reads a JSONL log with its rotated files, :func:`follow` follows it live, and
:func:`log_files` lists its files. A torn or corrupt line is skipped and reported (a :class:`SkippedLine`),
never a reason to refuse the log. The writer, and the other places turns go, are the bot's
(:mod:`bot.transcripts`); nothing here imports ``bot``, ``nlu``, ``retrieval`` or ``training``.
"""

from csbot.transcripts.follow import follow
from csbot.transcripts.reader import SkippedLine, iter_turns, lock_path, log_files
from csbot.transcripts.record import TranscriptTurn, turn_from_json, turn_to_json

__all__ = [
    "SkippedLine",
    "TranscriptTurn",
    "follow",
    "iter_turns",
    "lock_path",
    "log_files",
    "turn_from_json",
    "turn_to_json",
]
