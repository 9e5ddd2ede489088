"""The transcript log: one :class:`TranscriptTurn` per turn, to a JSONL file and optionally a Redis stream.

Build the sink with :meth:`TranscriptsConfig.create_sink`; read logs back with :func:`iter_turns` and
:func:`follow` (``csbot transcripts show`` / ``tail``).
"""

from bot.transcripts.background import BackgroundSink
from bot.transcripts.base import TeeSink, TranscriptSink
from bot.transcripts.config import TranscriptsConfig
from bot.transcripts.jsonl import JsonlTranscriptLog, follow, iter_turns, log_files
from bot.transcripts.record import TranscriptTurn
from bot.transcripts.redis_stream import RedisTranscriptStream

__all__ = [
    "BackgroundSink",
    "JsonlTranscriptLog",
    "RedisTranscriptStream",
    "TeeSink",
    "TranscriptSink",
    "TranscriptTurn",
    "TranscriptsConfig",
    "follow",
    "iter_turns",
    "log_files",
]
