"""The admin API: switching a running server to the registry's newly promoted versions.

``POST /admin/reload`` (``Authorization: Bearer <token>``, the token read from the environment variable
``server.admin_token_env`` when the server is built; unset: 503) makes this worker look at the registry and
switch when another version was promoted (:class:`bot.reload.ModelSwitcher`), and tells the other workers
sharing the session Redis to look too. The answer says whether this worker switched and what it runs; a
version that failed to load is a 500 naming the failure (the old versions keep serving). Without a registry
in the config: 409. ``GET /admin/reload`` shows the same status without switching.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from aiohttp import web

from bot.server.auth import require_bearer
from bot.server.errors import RequestError

if TYPE_CHECKING:
    from bot.server.app import ServerState

log = logging.getLogger(__name__)


def admin_routes(state: ServerState, token: str | None, token_env: str) -> list[web.RouteDef]:
    """The routes above; ``token`` None: they answer 503 naming ``token_env``."""
    bot = state.bot

    def switcher_of(request: web.Request):
        require_bearer(request, token, token_env, "admin API")
        if bot.switcher is None:
            raise RequestError(409, "this server has no model registry: set registry.path in its config")
        return bot.switcher

    def body(switched: bool | None = None) -> dict:
        out = {"worker": os.getpid(), **bot.versions().to_dict(), "reload": bot.switcher.status.to_dict()}
        if switched is not None:
            out["switched"] = switched
        return out

    async def show(request: web.Request) -> web.Response:
        switcher_of(request)
        return web.json_response(body())

    async def reload(request: web.Request) -> web.Response:
        switcher = switcher_of(request)
        failures = switcher.status.failures
        switched = await switcher.reload()
        if bot.config is not None:
            from bot.reload import announce

            await announce(bot.config)
        if switcher.status.failures > failures:
            raise RequestError(500, f"the promoted version could not be loaded; the running one keeps serving: "
                                    f"{switcher.status.last_error}")
        return web.json_response(body(switched))

    return [web.get("/admin/reload", show), web.post("/admin/reload", reload)]


def mount_admin(app: web.Application, state: ServerState, token_env: str) -> None:
    """Add the admin routes to ``app``, the token read from ``token_env`` now."""
    token = os.environ.get(token_env) or None
    app.router.add_routes(admin_routes(state, token, token_env))


__all__ = ["admin_routes", "mount_admin"]
