"""The REST channel: Rasa's REST contract, so chat widgets built for Rasa work unchanged.

``POST /webhooks/rest/webhook`` takes ``{"sender": str, "message": str, "metadata"?: object}`` and answers
the bot's reply as a JSON list, one object per bubble: ``{"recipient_id", "text", "buttons"?: [{"title",
"payload"}]}``. A button's payload sent back as ``message`` is the click. ``GET /webhooks/rest/`` answers
``{"status": "ok"}``. The conversation is ``rest:{sender}``; replies go to ``sender``.

Options (section ``channels.rest``, :class:`RestConfig`): ``token_env`` names the environment variable
holding a bearer token the webhook then requires (``Authorization: Bearer ...``, compared in constant
time); ``cors_origins`` lists the web origins a browser widget may call from (``"*"``: any).

REST is request/response: the bot cannot reach a REST customer later, so a message sent to a REST
conversation outside a request (``BotApp.send_to``) raises :class:`~csbot.errors.UnreachableError`.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any, ClassVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from bot.channels.base import CollectingOutputChannel, OnMessage, OutputChannel, SentMessage
from bot.channels.webhook import ChannelConfig, WebhookChannel, secret_from_env
from bot.messages import Message, safe_text
from bot.server.errors import RequestError, read_json_body
from csbot.errors import UnreachableError

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/rest/webhook"
STATUS_PATH = "/webhooks/rest/"


class RestConfig(ChannelConfig):
    """Section ``channels.rest``."""

    token_env: str | None = Field(None, description="environment variable holding the bearer token required; none: open")
    cors_origins: list[str] = Field(default_factory=list, description='origins a browser may call from; "*": any')


class RestRequest(BaseModel):
    """The body of ``POST /webhooks/rest/webhook`` (other keys a widget sends are ignored)."""

    model_config = ConfigDict(extra="ignore")

    sender: StrictStr = Field(min_length=1)
    message: StrictStr
    metadata: dict[str, Any] | None = None


class RestCollector(CollectingOutputChannel):
    """What the bot says during one request, answered as the response body."""

    name: ClassVar[str] = "rest"


class RestLaterOutput(OutputChannel):
    """The REST channel's output outside a request: nowhere to send, so every send raises
    :class:`~csbot.errors.UnreachableError` (the caller records it; nothing is reported as sent)."""

    name: ClassVar[str] = "rest"

    async def send_text(self, recipient_id: str, text: str) -> None:
        raise UnreachableError(f"rest: cannot reach {recipient_id} outside a request: REST has no push, the customer "
                               "sees a message only in the answer to their own next message")


def bubble(sent: SentMessage) -> dict[str, Any]:
    """One recorded message in Rasa's REST response format."""
    out: dict[str, Any] = {"recipient_id": sent.recipient_id}
    if sent.text:
        out["text"] = sent.text
    if sent.buttons:
        out["buttons"] = [button.to_dict() for button in sent.buttons]
    for name in ("image", "attachment", "custom"):
        if getattr(sent, name) is not None:
            out[name] = getattr(sent, name)
    return out


class RestChannel(WebhookChannel):
    """Rasa-compatible REST webhook, optionally with a bearer token and CORS for browser widgets."""

    name: ClassVar[str] = "rest"
    config_model: ClassVar[type[ChannelConfig]] = RestConfig

    def __init__(self, config: RestConfig, token: str | None = None) -> None:
        super().__init__(config)
        self.config: RestConfig = config
        self.token = token
        self.later = RestLaterOutput()

    @classmethod
    def from_config(cls, config: ChannelConfig) -> RestChannel:
        assert isinstance(config, RestConfig)
        return cls(config, secret_from_env(config.token_env, "channels.rest.token_env"))

    def output_channel(self) -> OutputChannel:
        return self.later

    # -- CORS and authentication ---------------------------------------------------------------------------
    def cors_headers(self, request: web.Request) -> dict[str, str]:
        """``Access-Control-Allow-Origin`` for a listed origin, nothing for any other."""
        origin = request.headers.get("Origin")
        origins = self.config.cors_origins
        if not origin or not ("*" in origins or origin in origins):
            return {}
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}

    def check_token(self, request: web.Request) -> None:
        if self.token is None:
            return
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            raise RequestError(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    # -- routes --------------------------------------------------------------------------------------------
    def routes(self, on_message: OnMessage) -> list[web.RouteDef]:
        def with_cors(handler):
            async def handle(request: web.Request) -> web.StreamResponse:
                headers = self.cors_headers(request)
                try:
                    response = await handler(request)
                except RequestError as exc:
                    exc.headers.update(headers)
                    raise
                except web.HTTPException as exc:
                    exc.headers.update(headers)
                    raise
                response.headers.update(headers)
                return response

            return handle

        async def preflight(request: web.Request) -> web.Response:
            headers = self.cors_headers(request)
            if not headers:
                raise RequestError(403, f"origin {request.headers.get('Origin', '(none)')} is not allowed")
            requested = request.headers.get("Access-Control-Request-Headers", "Content-Type, Authorization")
            return web.Response(status=204, headers={
                **headers,
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": requested,
                "Access-Control-Max-Age": "600",
            })

        async def status(request: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        async def webhook(request: web.Request) -> web.Response:
            self.check_token(request)
            body = await read_json_body(request, RestRequest)
            output = RestCollector()
            message = Message(session_id=f"rest:{body.sender}", text=safe_text(body.message), channel=self.name,
                              metadata=body.metadata or {}, recipient_id=body.sender)
            await on_message(message, output)
            return web.json_response([bubble(sent) for sent in output.take()])

        return [
            web.get(STATUS_PATH, with_cors(status), allow_head=False),
            web.options(STATUS_PATH, preflight),
            web.post(WEBHOOK_PATH, with_cors(webhook)),
            web.options(WEBHOOK_PATH, preflight),
        ]


__all__ = ["RestChannel", "RestConfig", "RestRequest"]
