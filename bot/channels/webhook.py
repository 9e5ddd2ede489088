"""Channels reached over HTTP: the server (``csbot serve``) mounts each enabled one's routes.

A :class:`WebhookChannel` is an :class:`~bot.channels.base.InputChannel` whose messages arrive as HTTP
requests: :meth:`WebhookChannel.routes` gives the aiohttp routes that turn a platform's request into a
:class:`~bot.messages.Message` and hand it to the one ``on_message`` callback. Each channel declares its
pydantic config model (``config_model``, the keys under ``channels.<name>:`` in the config file) and is
built from it by :meth:`WebhookChannel.from_config`; secrets come from environment variables the config
names, never from the file. Channels are chosen by name through :data:`csbot.plugins.CHANNELS`.
"""

from __future__ import annotations

import abc
import os
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict

from bot.channels.base import InputChannel, OnMessage
from csbot.errors import ConfigError

if TYPE_CHECKING:
    from aiohttp import web


class ChannelConfig(BaseModel):
    """What every webhook channel's section has; a channel's own model extends it."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True


class WebhookChannel(InputChannel):
    """An input channel fed by HTTP requests; the server mounts :meth:`routes` and starts and stops it."""

    #: The pydantic model of this channel's section (``channels.<name>``).
    config_model: ClassVar[type[ChannelConfig]] = ChannelConfig

    def __init__(self, config: ChannelConfig) -> None:
        self.config = config

    @classmethod
    def from_config(cls, config: ChannelConfig) -> WebhookChannel:
        """Build the channel from its validated section (secrets read from the environment here)."""
        return cls(config)

    @abc.abstractmethod
    def routes(self, on_message: OnMessage) -> list[web.RouteDef]:
        """The HTTP routes of this channel; each hands its messages to ``on_message``."""

    async def start(self) -> None:
        """Open what the channel needs (an HTTP client session for the platform's API)."""

    async def stop(self) -> None:
        """Finish sending and close what :meth:`start` opened."""

    async def serve(self, on_message: OnMessage) -> None:  # pragma: no cover - the server mounts routes instead
        raise NotImplementedError(f"the {self.name} channel is served by `csbot serve`, which mounts its routes")


def secret_from_env(variable: str | None, setting: str) -> str | None:
    """The secret in environment variable ``variable`` (named by the config key ``setting``), or None when the
    config names none; a named but unset variable is a :class:`ConfigError` naming both."""
    if not variable:
        return None
    value = os.environ.get(variable)
    if not value:
        raise ConfigError(f"{setting}: the environment variable {variable} is not set")
    return value


__all__ = ["ChannelConfig", "WebhookChannel", "secret_from_env"]
