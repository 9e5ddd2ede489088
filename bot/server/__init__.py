"""The webhook server of ``csbot serve``: health, readiness, versions, metrics and every enabled channel's routes.

:func:`build_app` makes the aiohttp application from a :class:`~bot.app.BotApp` and the webhook channels
:func:`build_channels` builds from the config; :func:`run_server` serves it until SIGINT or SIGTERM, and
:func:`bot.server.workers.run_workers` runs several such servers on one port. The agent API is in :mod:`bot.server.agents`, the
hand-over webhook in :mod:`bot.server.notify`, the turn queue and rate limits in :mod:`bot.server.limits`.
Every error is a JSON body (:mod:`bot.server.errors`); channels read their bodies with :func:`read_json_body`.
"""

from bot.server.app import STATE, ServerState, build_app, build_channels
from bot.server.errors import RequestError, error_middleware, error_response, read_json_body
from bot.server.metrics import ServerMetrics
from bot.server.run import run_server

__all__ = [
    "STATE",
    "RequestError",
    "ServerMetrics",
    "ServerState",
    "build_app",
    "build_channels",
    "error_middleware",
    "error_response",
    "read_json_body",
    "run_server",
]
