"""Building the configured session store: a registered name or a dotted path, never a silent fallback."""

from __future__ import annotations

import importlib
import logging

from bot.sessions.base import SessionStore
from bot.sessions.config import SessionsConfig
from csbot.errors import ConfigError

logger = logging.getLogger(__name__)

#: Registered store names and the classes they stand for (imported on use, so redis stays unloaded).
STORES = {
    "memory": "bot.sessions.memory:MemorySessionStore",
    "redis": "bot.sessions.redis:RedisSessionStore",
}


def create_store(config: SessionsConfig | None = None) -> SessionStore:
    """The store ``config.store`` names, built from the config; unknown or unusable → :class:`ConfigError`."""
    config = config if config is not None else SessionsConfig()
    cls = store_class(config.store)
    try:
        store = cls.from_config(config)
    except TypeError as exc:
        raise ConfigError(f"sessions.store {config.store!r}: cannot be built from the sessions config: {exc}") from exc
    logger.debug("session store: %s", type(store).__name__)
    return store


def store_class(name: str) -> type[SessionStore]:
    """Resolve ``memory``, ``redis``, ``package.module:Class`` or ``package.module.Class`` to a class."""
    target = STORES.get(name, name)
    if ":" in target:
        module_name, _, attr = target.partition(":")
    elif "." in target:
        module_name, _, attr = target.rpartition(".")
    else:
        known = ", ".join(sorted(STORES))
        raise ConfigError(
            f"sessions.store {name!r} is not a known store ({known}) nor a dotted path such as package.module:Class"
        )
    if not module_name or not attr:
        raise ConfigError(f"sessions.store {name!r}: expected package.module:Class")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or any error raised while the module runs
        raise ConfigError(f"sessions.store {name!r}: cannot import {module_name!r}: {exc}") from exc
    cls = module
    for part in attr.split("."):
        try:
            cls = getattr(cls, part)
        except AttributeError as exc:
            raise ConfigError(f"sessions.store {name!r}: {module_name!r} has no attribute {attr!r}") from exc
    if not (isinstance(cls, type) and issubclass(cls, SessionStore)):
        raise ConfigError(f"sessions.store {name!r} is not a SessionStore subclass")
    if getattr(cls, "__abstractmethods__", None):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise ConfigError(f"sessions.store {name!r} does not implement {missing}")
    return cls
