"""Building the transcript sink a bot appends to, from the ``transcripts`` config section.

Each name of ``transcripts.sinks`` is resolved by :data:`csbot.plugins.TRANSCRIPT_SINKS` (a registered
name or a dotted path to a :class:`TranscriptSink` subclass) and built by the class's ``from_config``;
a sink with nothing to do in this deployment (the Redis stream without a Redis session store) is left
out. The sinks are teed (a failing one never stops the others, and is logged once per outage), and put
behind a queue when ``transcripts.background`` is on.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bot.transcripts.background import BackgroundSink
from bot.transcripts.base import TeeSink, TranscriptSink
from bot.transcripts.config import TranscriptsConfig
from bot.transcripts.masking import MaskingSink
from csbot.errors import ConfigError
from csbot.plugins import TRANSCRIPT_SINKS

log = logging.getLogger(__name__)


def create_sink(config: TranscriptsConfig, log_path: Path, redis_url: str | None = None) -> TranscriptSink:
    """The sink for a bot: every configured sink in a :class:`TeeSink`, behind a :class:`BackgroundSink`
    when ``config.background`` is on; a :class:`~bot.transcripts.masking.MaskingSink` in front of the tee when
    ``config.mask`` names something to mask.

    ``log_path`` is the resolved ``transcripts.path`` (``Config.paths.transcripts``); ``redis_url`` the
    session store's URL when the session store is Redis, else ``None``. An unknown sink name, or a class
    that cannot be built from the config, is a :class:`ConfigError` naming ``transcripts.sinks``.
    Start it (``await sink.start()``, then ``await sink.ping()``) before the first turn; close it after.
    """
    sinks: list[TranscriptSink] = []
    for name in config.sinks:
        cls: type[TranscriptSink] = TRANSCRIPT_SINKS.resolve(name)
        try:
            sink = cls.from_config(config, log_path, redis_url)
        except TypeError as exc:
            raise ConfigError(
                f"transcripts.sinks {name!r}: cannot be built from the transcripts config: {exc}"
            ) from exc
        if sink is None:
            log.debug("transcript sink %r left out (nothing to do in this deployment)", name)
        else:
            sinks.append(sink)
    out: TranscriptSink = TeeSink(sinks)  # logs a failing sink once per outage, not on every turn
    if config.mask:  # masked in the writer's queue, off the reply path; the reply itself is never changed
        out = MaskingSink(out, config.mask)
    return BackgroundSink(out, config.max_queued) if config.background else out


__all__ = ["create_sink"]
