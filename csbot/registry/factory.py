"""Build the configured registry backend: ``registry.backend`` is a registered name or ``package.module:Class``."""

from __future__ import annotations

from pathlib import Path

from csbot.plugins import Registry as PluginKind
from csbot.registry.base import Registry
from csbot.registry.config import RegistryConfig

#: The built-in registry backends (``registry.backend``).
REGISTRY_BACKENDS = PluginKind("registry.backend", "csbot.registry.base:Registry", {
    "directory": "csbot.registry.directory:DirectoryRegistry",
})


def create_registry(config: RegistryConfig, path: Path) -> Registry:
    """The backend ``config.backend`` names, over the registry at ``path``, built as ``Backend(path, config)``.

    An unknown name, a dotted path that imports nothing, or a class that is not a complete
    :class:`~csbot.registry.base.Registry` raises :class:`~csbot.errors.ConfigError` naming ``registry.backend``;
    nothing falls back to the directory backend silently.
    """
    cls = REGISTRY_BACKENDS.resolve(config.backend)
    return cls(Path(path), config)


__all__ = ["REGISTRY_BACKENDS", "create_registry"]
