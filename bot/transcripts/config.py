"""Transcript log options: section ``transcripts`` of ``configs/default.yaml``, overridden by flags."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.transcripts.background import DEFAULT_MAX_QUEUED
from bot.transcripts.jsonl import DEFAULT_BACKUPS, DEFAULT_MAX_BYTES


class TranscriptsConfig(BaseModel):
    """Where turns are recorded: the sinks named in ``sinks`` (by default the JSONL file, plus a Redis
    stream when sessions live in Redis); :func:`bot.transcripts.factory.create_sink` builds them."""

    model_config = ConfigDict(extra="forbid")

    sinks: list[str] = Field(
        default_factory=lambda: ["jsonl", "redis_stream"],
        description="jsonl | redis_stream (only with the Redis session store and redis_stream on) | a "
                    "TranscriptSink subclass as package.module:Class; every turn goes to each of them",
    )
    path: str = Field("{home}/logs/transcripts.jsonl", min_length=1,
                      description="the JSONL log; {home} or relative to the config file's folder")
    max_bytes: int = Field(DEFAULT_MAX_BYTES, ge=1, description="rotate the log when it would grow past this")
    backups: int = Field(DEFAULT_BACKUPS, ge=0, description="rotated files kept: path.1 (newest) ... path.N")
    redis_stream: bool = Field(True, description="also XADD each turn to a Redis stream when the session store is Redis")
    stream_key: str = Field("csbot:transcripts", min_length=1)
    stream_maxlen: int = Field(100_000, ge=1, description="the stream keeps about this many newest turns")
    background: bool = Field(True, description="append after the reply, from a queue (see bot/transcripts/background.py)")
    max_queued: int = Field(DEFAULT_MAX_QUEUED, ge=1, description="turns the background queue holds before a turn waits")
    mask: list[Literal["email", "phone"]] = Field(
        default_factory=list,
        description="personal data masked in every sink ([email], [phone]) in the customer's text, the entities, "
                    "the reply and the decision; the customer still gets the reply unmasked")

    @field_validator("sinks")
    @classmethod
    def _names_once_each(cls, sinks: list[str]) -> list[str]:
        for index, name in enumerate(sinks):
            if not name:
                raise ValueError("a sink name must not be empty")
            if name in sinks[:index]:
                raise ValueError(f"{name!r} is given twice (each turn would be recorded twice)")
        return sinks


__all__ = ["TranscriptsConfig"]
