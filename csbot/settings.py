"""The one configuration object: every section of the config file, read once, typed, with paths resolved.

``load_config(path, overrides)`` reads ``configs/default.yaml`` (or the user's file) once into
:class:`Config`, composed of the section models defined beside their code. CLI flags arrive as dotted-key
``overrides`` (``{"sessions.store": "redis"}``); ``$CSBOT_REDIS_URL`` overrides ``sessions.url``. Every
problem is one :class:`~csbot.errors.ConfigError` naming the file and the dotted key; an unknown section or key
gets a did-you-mean (``config.yml: sesions: unknown section; did you mean sessions?``). The file is read by
:func:`csbot.config.read_yaml`: UTF-8 only, no key given twice.

This is the composition root: it imports every package's section model, so only entry points (the CLI,
tests, benchmarks, a user's script) import it; the packages themselves receive the typed sections.

Paths in the ``bot`` and ``transcripts`` sections (and ``nlu.entity_patterns``) may start with ``{home}`` (where runtime files go, see
:mod:`csbot.home`) or ``{configs}`` (the packaged default config and demo); other relative paths start at
the config file's folder. :attr:`Config.paths` holds them resolved.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from bot.config import BotConfig, ChannelsConfig, ServerConfig
from bot.sessions.config import REDIS_URL_ENV, SessionsConfig
from bot.transcripts.config import TranscriptsConfig
from csbot.config import apply_overrides, did_you_mean, read_config_file, validation_error
from csbot.errors import ConfigError
from csbot.home import configs_dir, default_config_path, runtime_home
from csbot.registry.config import RegistryConfig
from nlu.config import NLUConfig
from retrieval.config import RetrievalConfig
from training.config import TrainingConfig


@dataclass(frozen=True)
class BotPaths:
    """The paths of a :class:`Config`, resolved (``{home}``, ``{configs}``, ``~``, relative to the file)."""

    domain: Path
    nlu_data: list[Path]
    qa_data: list[Path]
    stories: Path
    model_dir: Path
    index_dir: Path
    transcripts: Path
    #: the model registry directory, or None when the config uses none
    registry: Path | None = None
    #: the entity patterns files (``nlu.entity_patterns``: regexes, lookup tables, synonyms)
    entity_patterns: list[Path] = field(default_factory=list)


class Config(BaseModel):
    """Every section of a config file; build it with :func:`load_config`."""

    model_config = ConfigDict(extra="forbid")

    nlu: NLUConfig = NLUConfig()
    training: TrainingConfig = TrainingConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    sessions: SessionsConfig = SessionsConfig()
    transcripts: TranscriptsConfig = TranscriptsConfig()
    bot: BotConfig = BotConfig()
    server: ServerConfig = ServerConfig()
    registry: RegistryConfig = RegistryConfig()
    #: channel name -> its section, validated against the channel's own model when ``csbot serve`` builds it
    channels: ChannelsConfig = {}

    _source: Path | None = PrivateAttr(None)
    _home: Path | None = PrivateAttr(None)

    @property
    def source(self) -> Path | None:
        """The file this config was read from (None: built-in defaults only)."""
        return self._source

    @property
    def base_dir(self) -> Path:
        """The folder relative paths start at: the config file's, or the packaged configs folder."""
        return self._source.parent if self._source is not None else configs_dir()

    @property
    def home(self) -> Path:
        """Where runtime files go (see :mod:`csbot.home`)."""
        return self._home if self._home is not None else runtime_home()

    def resolve_path(self, value: str) -> Path:
        """One path setting resolved: ``{home}``/``{configs}`` expanded, ``~`` expanded, relative to :attr:`base_dir`."""
        text = value.replace("{home}", str(self.home)).replace("{configs}", str(configs_dir()))
        path = Path(os.path.expanduser(text))
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    @property
    def paths(self) -> BotPaths:
        bot = self.bot
        return BotPaths(
            domain=self.resolve_path(bot.domain),
            nlu_data=[self.resolve_path(p) for p in bot.nlu_data],
            qa_data=[self.resolve_path(p) for p in bot.qa_data],
            stories=self.resolve_path(bot.stories),
            model_dir=self.resolve_path(bot.model_dir),
            index_dir=self.resolve_path(bot.index_dir),
            transcripts=self.resolve_path(self.transcripts.path),
            registry=self.resolve_path(self.registry.path) if self.registry.path else None,
            entity_patterns=[self.resolve_path(p) for p in self.nlu.entity_patterns],
        )


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
                home: str | Path | None = None) -> Config:
    """Read ``path`` (default: the packaged ``default.yaml``) once into a :class:`Config`.

    ``overrides`` maps dotted keys to values (``None`` means "not given"); ``$CSBOT_REDIS_URL`` sets
    ``sessions.url`` unless a flag does. ``home`` overrides where runtime files go.
    """
    source = Path(path).resolve() if path is not None else default_config_path()
    if path is None and not source.is_file():
        data: dict[str, Any] = {}
        source_for_paths: Path | None = None
    else:
        data = read_config_file(source)
        source_for_paths = source
    for section, values in data.items():
        if not isinstance(section, str):
            raise ConfigError(f"{source}: {section!r}: a section name must be a string{did_you_mean(str(section), Config.model_fields)}")
        if values is None:
            data[section] = {}
        elif not isinstance(values, dict) and section in Config.model_fields:
            raise ConfigError(f"{source}: {section}: must be a mapping of keys")
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    env_url = os.environ.get(REDIS_URL_ENV)
    if env_url and "sessions.url" not in given:
        given = {"sessions.url": env_url, **given}
    apply_overrides(data, given)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, str(source), overridden=given, model=Config) from exc
    config._source = source_for_paths
    config._home = Path(home).resolve() if home is not None else None
    return config


__all__ = ["BotPaths", "Config", "REDIS_URL_ENV", "load_config"]
