"""Bearer tokens of the server's authenticated APIs (agents, admin), read from the environment at start-up."""

from __future__ import annotations

import hmac

from aiohttp import web

from bot.server.errors import RequestError


def require_bearer(request: web.Request, token: str | None, token_env: str, api: str) -> None:
    """Refuse ``request`` unless it carries ``Authorization: Bearer <token>`` (compared in constant time): 401
    when missing or wrong, 503 naming ``token_env`` while no token is configured (``token`` None)."""
    if token is None:
        raise RequestError(503, f"the {api} is not configured: set the environment variable {token_env} "
                                "to its bearer token and restart the server")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise RequestError(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


__all__ = ["require_bearer"]
