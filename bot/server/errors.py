"""Every error the server answers is a JSON body: ``{"error": {"status": N, "message": "...", "field": "..."}}``.

:func:`error_middleware` turns what a handler raises into that body with the right status: a
:class:`RequestError` (a channel refusing a request: 400 naming the field, 401, 415 ...), aiohttp's own
HTTP errors (unknown route 404, wrong method 405, body over ``server.max_body_bytes`` 413), and anything
else, a :class:`~csbot.errors.CsbotError` included, as a 500 whose message carries no traceback (the
traceback goes to the log). :func:`read_json_body` is how a channel reads and validates a JSON body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from csbot.errors import CsbotError

log = logging.getLogger(__name__)

Model = TypeVar("Model", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Headers of an aiohttp error kept on the JSON answer (405 says which methods are allowed; CORS for browsers).
_KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Access-Control-Allow-Origin", "Vary")


class RequestError(Exception):
    """A request the server refuses: ``status`` (4xx), a message for the caller, and the body field at fault."""

    def __init__(self, status: int, message: str, field: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field
        self.headers: dict[str, str] = dict(headers or {})


def error_response(status: int, message: str, field: str | None = None,
                   headers: Mapping[str, str] | None = None) -> web.Response:
    """The JSON answer for an error."""
    error: dict[str, object] = {"status": status, "message": message}
    if field is not None:
        error["field"] = field
    return web.json_response({"error": error}, status=status, headers=headers)


def _http_error_message(exc: web.HTTPException, request: web.Request) -> str:
    if exc.status == 404:
        return f"no route {request.path}"
    if exc.status == 405:
        allowed = exc.headers.get("Allow", "")
        return f"method {request.method} is not allowed on {request.path}" + (f" (allowed: {allowed})" if allowed else "")
    if exc.status == 413:
        return f"the request body is too large: {exc.text}" if exc.text else "the request body is too large"
    return exc.reason


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every error raised by ``handler`` (or by routing) as a JSON error body."""
    try:
        return await handler(request)
    except RequestError as exc:
        return error_response(exc.status, exc.message, exc.field, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {name: exc.headers[name] for name in _KEPT_HEADERS if name in exc.headers}
        return error_response(exc.status, _http_error_message(exc, request), headers=headers)
    except CsbotError as exc:
        log.error("%s %s failed: %s: %s", request.method, request.path, exc.__class__.__name__, exc, exc_info=exc)
        return error_response(500, "the bot could not answer this request")
    except Exception as exc:  # the last line of defence: a JSON 500, the traceback in the log
        log.exception("%s %s failed unexpectedly: %s", request.method, request.path, exc.__class__.__name__)
        return error_response(500, "internal server error")


def _field_of(error: Mapping[str, object]) -> str | None:
    loc = [str(part) for part in error.get("loc", ())]  # type: ignore[union-attr]
    return ".".join(loc) or None


async def read_json_body(request: web.Request, model: type[Model]) -> Model:
    """The request's JSON body validated by ``model``; :class:`RequestError` otherwise (415 when it is not
    JSON, 400 naming the field when it is malformed, missing or of the wrong type; 413 passes through)."""
    if request.content_type != "application/json":
        raise RequestError(415, f"expected Content-Type application/json, got {request.content_type or 'none'}")
    raw = await request.read()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(400, f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RequestError(400, "the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = _field_of(first)
        raise RequestError(400, f"{field or 'body'}: {first['msg']}", field) from exc


__all__ = ["RequestError", "error_middleware", "error_response", "read_json_body"]
