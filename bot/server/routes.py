"""The server's own routes: liveness, readiness, versions and metrics.

``GET /health`` answers 200 while the process runs; ``GET /ready`` 200 once the bot has started (model,
index and session store usable) and 503 before or after; ``GET /version`` the package, NLU model and Q&A
index versions this worker answers with (and its process id; with a registry, its last switch and failure);
``GET /metrics`` the Prometheus text of :class:`~bot.server.metrics.ServerMetrics`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from aiohttp import web

from bot.server.errors import error_response
from csbot import __version__

if TYPE_CHECKING:
    from bot.server.app import ServerState


def server_routes(state: ServerState) -> list[web.RouteDef]:
    """The routes above, answering from ``state``."""

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(request: web.Request) -> web.Response:
        if state.ready():
            return web.json_response({"status": "ready"})
        return error_response(503, "not ready: the bot has not started (or is stopping)")

    async def version(request: web.Request) -> web.Response:
        body = {"package": __version__, "worker": os.getpid(), **state.bot.versions().to_dict()}
        if state.bot.switcher is not None:
            body["reload"] = state.bot.switcher.status.to_dict()
        return web.json_response(body)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=state.metrics.render(), headers={"Content-Type": state.metrics.content_type})

    return [
        web.get("/health", health, allow_head=True),
        web.get("/ready", ready, allow_head=True),
        web.get("/version", version),
        web.get("/metrics", metrics),
    ]


__all__ = ["server_routes"]
