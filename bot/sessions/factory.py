"""Building the configured session store: a registered name or a dotted path, never a silent fallback."""

from __future__ import annotations

import logging

from bot.sessions.base import SessionStore
from bot.sessions.config import SessionsConfig
from csbot.errors import ConfigError
from csbot.plugins import SESSION_STORES

logger = logging.getLogger(__name__)


def create_store(config: SessionsConfig | None = None) -> SessionStore:
    """The store ``config.store`` names (see :data:`csbot.plugins.SESSION_STORES`), built from the config.

    An unknown name, or a class that is not a complete :class:`SessionStore`, is a :class:`ConfigError`
    naming ``sessions.store``.
    """
    config = config if config is not None else SessionsConfig()
    cls: type[SessionStore] = SESSION_STORES.resolve(config.store)
    try:
        store = cls.from_config(config)
    except TypeError as exc:
        raise ConfigError(f"sessions.store {config.store!r}: cannot be built from the sessions config: {exc}") from exc
    logger.debug("session store: %s", type(store).__name__)
    return store


__all__ = ["create_store"]
