"""The aiohttp application of ``csbot serve``: the server's routes, every enabled channel's, one error format.

:func:`build_channels` makes the webhook channels the config's ``channels:`` section enables: each name is
resolved through :data:`csbot.plugins.CHANNELS`, its section validated against the channel's
``config_model`` and the channel built with ``from_config``. :func:`build_app` mounts their routes beside
``/health``, ``/ready``, ``/version`` and ``/metrics`` (:mod:`bot.server.routes`), registers each channel's
output side with the :class:`~bot.app.BotApp` (so ``send_to`` reaches its conversations), and hands the
channels one callback that cuts over-long text, answers through the bot and counts the turn. Channels are
started with the application and stopped when it shuts down; the bot's own lifecycle stays with the caller.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from bot.channels.base import OnMessage, OutputChannel
from bot.channels.webhook import WebhookChannel
from bot.config import ChannelsConfig, ServerConfig
from bot.messages import Message, Reply
from bot.server.admin import mount_admin
from bot.server.agents import mount_agents
from bot.server.errors import Handler, error_middleware
from bot.server.limits import RateLimiter, TurnGate, create_limiter
from bot.server.metrics import ServerMetrics
from bot.server.routes import server_routes
from csbot.config import validated
from csbot.errors import ConfigError
from csbot.plugins import CHANNELS

if TYPE_CHECKING:
    from aiohttp.web_urldispatcher import AbstractRoute

    from bot.app import BotApp

log = logging.getLogger(__name__)

#: The label of requests that no channel answers (the server's own routes, unknown routes).
SERVER_LABEL = "server"


@dataclass
class ServerState:
    """What the server's handlers share: the bot, the settings, the channels and the metrics."""

    bot: BotApp
    config: ServerConfig
    channels: list[WebhookChannel]
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
    #: which channel each mounted route belongs to (the label of its requests)
    route_channels: dict[AbstractRoute, str] = field(default_factory=dict)
    #: the bounded queue and the rate limit in front of the bot (set by :func:`build_app`)
    gate: TurnGate | None = None

    def ready(self) -> bool:
        """Whether the bot has started: model, index and store usable."""
        return self.bot.started

    def on_reload(self, outcome: str, seconds: float) -> None:
        """Count a look at the registry and, after a switch, show the new versions in the metrics."""
        self.metrics.reload(outcome)
        if outcome == "switched":
            self.metrics.versions(self.bot.versions())

    def channel_of(self, request: web.Request) -> str:
        return self.route_channels.get(request.match_info.route, SERVER_LABEL)

    def on_message(self) -> OnMessage:
        """The callback handed to every channel: text cut to ``max_text_chars``, the bot's answer, the turn counted."""
        limit = self.config.max_text_chars

        async def on_message(message: Message, output: OutputChannel) -> Reply:
            if len(message.text) > limit:
                log.info("session %s: a message of %d characters cut to %d", message.session_id, len(message.text), limit)
                message.text = message.text[:limit]
            if self.gate is None:
                self.gate = TurnGate(self.config, None, self.metrics)
            async with self.gate.admit(message):  # 503 when the queue is full, 429 over the rate limit
                started = time.perf_counter()
                reply = await self.bot.handle(message, output)
                self.metrics.turn(message.channel, reply, time.perf_counter() - started)
            return reply

        return on_message


#: Where the application keeps its :class:`ServerState`.
STATE = web.AppKey("csbot_server_state", ServerState)


def build_channels(channels: ChannelsConfig) -> list[WebhookChannel]:
    """The enabled webhook channels of a config's ``channels`` section, built; a bad entry is a ConfigError."""
    built: list[WebhookChannel] = []
    for name, section in channels.items():
        cls = CHANNELS.resolve(name)
        if not issubclass(cls, WebhookChannel):
            raise ConfigError(f"channels.{name}: the {name} channel is not a webhook channel and cannot be served "
                              f"by `csbot serve` (the terminal channel runs with `csbot chat`); remove it")
        settings = validated(cls.config_model, section or {}, "config", prefix=f"channels.{name}")
        if settings.enabled:
            built.append(cls.from_config(settings))
    return built


def build_app(bot: BotApp, channels: list[WebhookChannel], config: ServerConfig | None = None, *,
              limiter: RateLimiter | None = None) -> web.Application:
    """The aiohttp application serving ``channels`` with ``bot`` (start the bot before serving).

    ``limiter``: the per-sender rate limit; by default the one ``config.rate_limit_per_minute`` and the bot's
    session store call for (:func:`~bot.server.limits.create_limiter`).
    """
    config = config or ServerConfig()
    state = ServerState(bot, config, list(channels))
    if limiter is None:
        limiter = create_limiter(config.rate_limit_per_minute, bot.config.sessions if bot.config else None)
    state.gate = TurnGate(config, limiter, state.metrics)
    bot.observe_batches("nlu", lambda size: state.metrics.batch("nlu", size))
    bot.observe_batches("retrieval", lambda size: state.metrics.batch("retrieval", size))

    @web.middleware
    async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)  # the error middleware below turns every error into a response
        state.metrics.request(state.channel_of(request), response.status)
        return response

    app = web.Application(client_max_size=config.max_body_bytes, middlewares=[count_requests, error_middleware])
    app[STATE] = state
    app.router.add_routes(server_routes(state))
    mount_agents(app, state, config.agents)  # /conversations and the hand-over webhook
    mount_admin(app, state, config.admin_token_env)  # /admin/reload
    state.metrics.versions(bot.versions())
    if bot.switcher is not None:
        bot.switcher.on_reload = state.on_reload
    on_message = state.on_message()
    names: set[str] = set()
    for channel in state.channels:
        if channel.name in names:
            raise ConfigError(f"channels: two channels are named {channel.name!r}")
        names.add(channel.name)
        for route in app.router.add_routes(channel.routes(on_message)):
            state.route_channels[route] = channel.name
        bot.register_output(channel.output_channel(), channel.name)

    async def start_channels(app: web.Application) -> None:
        for channel in state.channels:
            await channel.start()

    async def stop_channels(app: web.Application) -> None:
        for channel in reversed(state.channels):
            try:
                await channel.stop()
            except Exception as exc:  # noqa: BLE001 - stop the others too; the first failure is logged
                log.warning("stopping the %s channel: %s: %s", channel.name, exc.__class__.__name__, exc)

    async def close_gate(app: web.Application) -> None:
        if state.gate is not None:
            await state.gate.close()

    app.on_startup.append(start_channels)
    app.on_cleanup.append(stop_channels)
    app.on_cleanup.append(close_gate)
    return app


__all__ = ["STATE", "SERVER_LABEL", "ServerState", "build_app", "build_channels"]
