"""Where the bot records its turns: a JSONL file and optionally a Redis stream, teed, off the reply path.

Build the sink with :func:`create_sink` from the ``transcripts`` config section. The record itself
(:class:`~csbot.transcripts.TranscriptTurn`) and reading logs back (``iter_turns``, ``follow``) live in
:mod:`csbot.transcripts`, where training can read them without importing the bot.
"""

from bot.transcripts.background import BackgroundSink
from bot.transcripts.base import TeeSink, TranscriptSink
from bot.transcripts.config import TranscriptsConfig
from bot.transcripts.factory import create_sink
from bot.transcripts.jsonl import JsonlTranscriptLog
from bot.transcripts.redis_stream import RedisTranscriptStream

__all__ = [
    "BackgroundSink",
    "JsonlTranscriptLog",
    "RedisTranscriptStream",
    "TeeSink",
    "TranscriptSink",
    "TranscriptsConfig",
    "create_sink",
]
