"""Transcript sinks of one's own, for ``transcripts.sinks`` by dotted path (and ones that must be refused)."""

from __future__ import annotations

from bot.transcripts import TranscriptSink


class ListSink(TranscriptSink):
    """Keeps turns in a list; built with the section's ``stream_key`` as its tag, and counts start and ping."""

    def __init__(self, tag: str = "") -> None:
        self.tag, self.turns, self.calls, self.closed = tag, [], [], False

    @classmethod
    def from_config(cls, config, log_path, redis_url):
        return cls(config.stream_key)

    async def start(self):
        self.calls.append("start")

    async def ping(self):
        self.calls.append("ping")

    async def append(self, turn):
        self.turns.append(turn)

    async def close(self):
        self.closed = True


class PlainSink(TranscriptSink):
    """A sink that takes no settings: the default ``from_config`` builds it."""

    async def append(self, turn):
        pass

    async def close(self):
        pass


class NeedsArguments(PlainSink):
    """Cannot be built by the default ``from_config``."""

    def __init__(self, where: str) -> None:
        self.where = where


class NotASink:
    """Importable, but not a TranscriptSink."""


class HalfSink(TranscriptSink):
    """A TranscriptSink subclass that forgot ``close``."""

    async def append(self, turn):
        pass
