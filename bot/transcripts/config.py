"""Transcript log options: section ``transcripts`` of ``configs/default.yaml``, overridden by flags."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from bot.transcripts.background import DEFAULT_MAX_QUEUED
from bot.transcripts.base import TeeSink, TranscriptSink
from bot.transcripts.jsonl import DEFAULT_BACKUPS, DEFAULT_MAX_BYTES
from csbot.config import DEFAULT_CONFIG, load_section, validated


class TranscriptsConfig(BaseModel):
    """Where turns are recorded: always the JSONL file, plus a Redis stream when sessions live in Redis."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field("../logs/transcripts.jsonl", min_length=1,
                      description="the JSONL log; relative to the folder above the config file's (see log_path)")
    max_bytes: int = Field(DEFAULT_MAX_BYTES, ge=1, description="rotate the log when it would grow past this")
    backups: int = Field(DEFAULT_BACKUPS, ge=0, description="rotated files kept: path.1 (newest) ... path.N")
    redis_stream: bool = Field(True, description="also XADD each turn to a Redis stream when the session store is Redis")
    stream_key: str = Field("csbot:transcripts", min_length=1)
    stream_maxlen: int = Field(100_000, ge=1, description="the stream keeps about this many newest turns")
    background: bool = Field(True, description="append after the reply, from a queue (see bot/transcripts/background.py)")
    max_queued: int = Field(DEFAULT_MAX_QUEUED, ge=1, description="turns the background queue holds before a turn waits")

    @classmethod
    def from_file(cls, path: str | Path | None = None, **overrides: object) -> TranscriptsConfig:
        """Defaults from the config file's ``transcripts`` section, then non-None overrides."""
        values = load_section("transcripts", path, cls)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return validated(cls, values, "transcripts options")

    def log_path(self, config_path: str | Path | None = None) -> Path:
        """:attr:`path` resolved: ``~`` expanded; a relative path is taken from the config file's folder, like
        every path of the config, so the bot and ``csbot transcripts`` find the same file whatever the
        working directory."""
        path = Path(os.path.expanduser(self.path))
        if path.is_absolute():
            return path
        config_dir = Path(config_path).resolve().parent if config_path else DEFAULT_CONFIG.parent
        return (config_dir / path).resolve()

    def create_sink(self, redis_url: str | None = None, config_path: str | Path | None = None) -> TranscriptSink:
        """The sink a bot appends to: the JSONL log (at :meth:`log_path` of ``config_path``), teed with the
        Redis stream when ``redis_url`` is given (the session store is Redis) and ``redis_stream`` is on."""
        from bot.transcripts.jsonl import JsonlTranscriptLog

        log = JsonlTranscriptLog(self.log_path(config_path), self.max_bytes, self.backups)
        if redis_url is None or not self.redis_stream:
            return log
        from bot.transcripts.redis_stream import RedisTranscriptStream

        return TeeSink([log, RedisTranscriptStream(redis_url, self.stream_key, self.stream_maxlen)])
