"""Transcript turns on a Redis stream, so every worker's turns are in one place and can be consumed live.

Each turn is one entry ``XADD key MAXLEN ~ maxlen * turn=<json> session=<id>``: the stream is capped
at about ``maxlen`` entries (Redis trims whole internal nodes, so it may hold somewhat more), which makes
it a recent window; the JSONL file is the complete record.

The URL may name a Redis Cluster (``redis+cluster://host1:port1,host2:port2``, see
:mod:`csbot.redis_client`): every command here touches the one stream key, so the whole stream lives on
the node that serves its slot (a stream cannot be split across nodes; at ``maxlen`` entries it stays small).

An ``XADD`` whose reply was lost (a timeout, a dropped connection) is retried by the client, so a turn can be
on the stream twice; :meth:`RedisTranscriptStream.read` gives each turn once (same session, turn number,
timestamp and text).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from bot.transcripts.base import TranscriptSink
from csbot.errors import ConfigError, DataError, StoreError
from csbot.redis_client import client_from_url, mask_url, redis_errors, translate
from csbot.transcripts import TranscriptTurn, turn_from_json, turn_to_json

if TYPE_CHECKING:
    from bot.transcripts.config import TranscriptsConfig

_PAGE = 1000


class RedisTranscriptStream(TranscriptSink):
    """Appends turns to a capped Redis stream and reads them back (all, or one session's).

    Connection and timeout errors become :class:`StoreUnavailableError`, other Redis errors
    :class:`StoreError` (see :func:`csbot.redis_client.translate`); both name the URL without its password.
    """

    def __init__(self, url: str, key: str = "csbot:transcripts", maxlen: int = 100_000, *,
                 timeout: float = 5.0) -> None:
        if maxlen < 1:
            raise ConfigError(f"transcript stream maxlen must be at least 1, got {maxlen}")
        self.url, self.key, self.maxlen = url, key, maxlen
        self.where = mask_url(url)
        self._client = client_from_url(url, timeout)

    @classmethod
    def from_config(cls, config: TranscriptsConfig, log_path: Path, redis_url: str | None) -> Self | None:
        """The stream ``transcripts.stream_key`` on the session store's Redis; ``None`` (left out) when the
        session store is not Redis (no ``redis_url``) or ``transcripts.redis_stream`` is off."""
        if redis_url is None or not config.redis_stream:
            return None
        return cls(redis_url, config.stream_key, config.stream_maxlen)

    def __repr__(self) -> str:
        return f"RedisTranscriptStream({self.where!r}, key={self.key!r})"

    def _error(self, exc: Exception, doing: str) -> StoreError:
        """A redis-py error as ours, password masked even where the driver echoes the URL."""
        return translate(exc, f"transcript stream {self.key!r}", self.url, doing)

    async def ping(self) -> None:
        """Check the server answers (at start-up); raises :class:`StoreUnavailableError` when not."""
        try:
            await self._client.ping()
        except redis_errors() as exc:
            raise self._error(exc, "the start-up PING") from exc

    async def append(self, turn: TranscriptTurn) -> None:
        """``XADD key MAXLEN ~ maxlen * turn=<json> session=<id>``."""
        fields: dict[Any, Any] = {"turn": turn_to_json(turn), "session": turn.session_id}
        try:
            await self._client.xadd(self.key, fields, maxlen=self.maxlen, approximate=True)
        except redis_errors() as exc:
            raise self._error(exc, "append") from exc

    async def read(self, session_id: str | None = None, count: int | None = None) -> list[TranscriptTurn]:
        """The newest ``count`` turns (all when ``None``), of one session when given, oldest first."""
        if count is not None and count <= 0:
            return []
        newest_first: list[TranscriptTurn] = []
        seen: set[tuple[str, int, float, str]] = set()
        upper: bytes | str = "+"
        try:
            while count is None or len(newest_first) < count:
                page = _PAGE if session_id is not None or count is None else min(_PAGE, count - len(newest_first))
                entries = await self._client.xrevrange(self.key, max=upper, min="-", count=page)
                for entry_id, fields in entries:
                    if session_id is not None and fields.get(b"session", b"").decode() != session_id:
                        continue
                    turn = self._decode(entry_id, fields)
                    identity = (turn.session_id, turn.turn, turn.timestamp, turn.user_text)
                    if identity in seen:  # a retried XADD
                        continue
                    seen.add(identity)
                    newest_first.append(turn)
                    if count is not None and len(newest_first) >= count:
                        break
                if len(entries) < page:
                    break
                upper = b"(" + entries[-1][0]
        except redis_errors() as exc:
            raise self._error(exc, "read") from exc
        newest_first.reverse()
        return newest_first

    def _decode(self, entry_id: bytes, fields: dict[bytes, bytes]) -> TranscriptTurn:
        try:
            return turn_from_json(fields[b"turn"])
        except (KeyError, ValueError) as exc:
            raise DataError(f"{self.where}: stream {self.key!r} entry {entry_id.decode()}: "
                            f"not a transcript turn: {exc}") from exc

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


__all__ = ["RedisTranscriptStream"]
