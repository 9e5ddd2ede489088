"""Telegram through the Bot API: updates arrive at ``POST /webhooks/telegram``, replies go out by ``sendMessage``.

Inbound, :class:`TelegramChannel` checks the ``X-Telegram-Bot-Api-Secret-Token`` header against the secret
registered with ``setWebhook`` (``csbot telegram set-webhook``; 403 on a mismatch or a missing header),
acknowledges every update at once and handles it in a background task (``stop()`` waits for them):

- a ``message`` with ``text`` becomes a :class:`~bot.messages.Message` of session ``telegram:{chat_id}``;
- a ``callback_query`` (an inline-keyboard button was pressed) is answered with ``answerCallbackQuery`` and
  its button's payload becomes the message text;
- any other update (an edited message, a sticker, a poll ...) is acknowledged and ignored.

Telegram retries an update it did not see acknowledged, so each ``update_id`` is handled once: a small
in-memory set with a time-to-live remembers the ones seen (per process; several workers behind one
webhook each keep their own).

Outbound, :class:`TelegramOutputChannel` sends ``sendMessage`` to ``{api_base_url}/bot{token}/sendMessage``;
buttons become an inline keyboard, one button per row, whose ``callback_data`` is the payload. Telegram
limits ``callback_data`` to 64 bytes: a longer payload (or one that starts with :data:`LONG_PAYLOAD_PREFIX`)
is sent as that prefix plus a short hash of it, and the hash is kept in a bounded in-memory map to find the
payload again. A worker that does not know the hash (another process, or after a restart) falls back to the
pressed button's title, which Telegram sends back in the callback's message. Every Bot API call is retried
with exponential backoff on a 5xx answer or a connection that could not be opened, and after
``parameters.retry_after`` seconds on a 429; a timeout or a dropped connection is not retried, since the
message may have been delivered already.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from collections import OrderedDict
from typing import Any, ClassVar

from aiohttp import ClientConnectorError, ClientError, ClientSession, ClientTimeout, web
from pydantic import Field

from bot.channels.base import OnMessage, OutputChannel
from bot.channels.dedupe import MemoryEventDedupe
from bot.channels.webhook import ChannelConfig, WebhookChannel, secret_from_env
from bot.messages import Button, Message, safe_text
from csbot.errors import ConfigError, DeliveryError

logger = logging.getLogger(__name__)

#: The header Telegram sends the ``secret_token`` of ``setWebhook`` back in.
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
#: Where updates arrive.
WEBHOOK_PATH = "/webhooks/telegram"
#: Telegram's limit on an inline button's ``callback_data``, in bytes.
CALLBACK_DATA_LIMIT = 64
#: Marks a ``callback_data`` that stands for a longer payload (the rest is a hash of it).
LONG_PAYLOAD_PREFIX = "csbot#"
#: Telegram's limit on one message's text, in characters; longer replies are cut with an ellipsis.
TEXT_LIMIT = 4096


class TelegramConfig(ChannelConfig):
    """The ``channels.telegram`` section: secrets are named by environment variable, never written here."""

    #: The variable holding the bot token BotFather gave (``123456:ABC-...``).
    bot_token_env: str = "TELEGRAM_BOT_TOKEN"
    #: The variable holding the webhook secret (1-256 characters of ``A-Z a-z 0-9 _ -``).
    secret_token_env: str = "TELEGRAM_SECRET_TOKEN"
    #: Where the Bot API is (a stand-in in tests, a local Bot API server in some deployments).
    api_base_url: str = "https://api.telegram.org"
    #: Bot API calls tried at most this many times (5xx, 429 and failed connections are retried).
    max_attempts: int = Field(5, ge=1)
    #: The first pause between attempts after a 5xx; doubled each time.
    backoff_seconds: float = Field(0.5, ge=0)
    #: The longest pause honoured for a 429's ``retry_after``; a longer one gives up instead.
    max_retry_after_seconds: float = Field(60.0, ge=0)
    #: Seconds one Bot API request may take.
    request_timeout_seconds: float = Field(10.0, gt=0)
    #: How long an ``update_id`` is remembered so a redelivered update is handled once.
    dedup_ttl_seconds: float = Field(3600.0, gt=0)
    #: How many update ids (and long button payloads) are remembered at most.
    memory_size: int = Field(10_000, ge=1)


class TelegramApiError(DeliveryError):
    """A Bot API call failed for good: a 4xx other than 429, or still failing after every retry."""

    def __init__(self, method: str, status: int | None, description: str) -> None:
        self.method, self.status, self.description = method, status, description
        where = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"Telegram {method}: {where}: {description}")


class TelegramBotApi:
    """The few Bot API methods csbot calls, with retries; the aiohttp session is opened on first use."""

    def __init__(self, base_url: str, token: str, *, max_attempts: int = 5, backoff_seconds: float = 0.5,
                 max_retry_after_seconds: float = 60.0, timeout_seconds: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_retry_after_seconds = max_retry_after_seconds
        self.timeout_seconds = timeout_seconds
        self._session: ClientSession | None = None

    @classmethod
    def from_config(cls, config: TelegramConfig, token: str) -> TelegramBotApi:
        return cls(config.api_base_url, token, max_attempts=config.max_attempts,
                   backoff_seconds=config.backoff_seconds, max_retry_after_seconds=config.max_retry_after_seconds,
                   timeout_seconds=config.request_timeout_seconds)

    def _client(self) -> ClientSession:
        if self._session is None or self._session.closed:
            self._session = ClientSession(timeout=ClientTimeout(total=self.timeout_seconds))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        """POST ``params`` as JSON to ``method``; the ``result`` of a successful answer.

        Raises :class:`TelegramApiError` (never naming the token) when the call fails for good.
        """
        url = f"{self.base_url}/bot{self._token}/{method}"
        problem = "not tried"
        status: int | None = None
        for attempt in range(1, self.max_attempts + 1):
            pause = self.backoff_seconds * 2 ** (attempt - 1)
            try:
                async with self._client().post(url, json=params) as response:
                    status = response.status
                    body = await _json_or_none(response)
            except ClientConnectorError as exc:  # nothing was sent: safe to try again
                status, problem = None, f"{exc.__class__.__name__}: cannot reach {self.base_url}"
            except (TimeoutError, ClientError) as exc:  # it may have arrived: a retry could send it twice
                raise TelegramApiError(method, None, f"{exc.__class__.__name__}: {exc}") from exc
            else:
                description = str(body.get("description", "")) if isinstance(body, dict) else "not a Bot API answer"
                if status == 200 and isinstance(body, dict) and body.get("ok") is True:
                    return body.get("result")
                problem = description or f"HTTP {status}"
                if status == 429:
                    retry_after = _retry_after(body)
                    if retry_after is not None:
                        if retry_after > self.max_retry_after_seconds:
                            raise TelegramApiError(method, status, f"{problem} (retry_after {retry_after}s is too long)")
                        pause = retry_after
                elif status < 500:
                    raise TelegramApiError(method, status, problem)
            if attempt < self.max_attempts:
                logger.info("telegram %s failed (%s), attempt %s of %s; retrying in %.2fs",
                            method, problem, attempt, self.max_attempts, pause)
                await asyncio.sleep(pause)
        raise TelegramApiError(method, status, f"{problem} (gave up after {self.max_attempts} attempts)")

    async def send_message(self, chat_id: str, text: str, reply_markup: dict[str, Any] | None = None) -> Any:
        params: dict[str, Any] = {"chat_id": _chat_id(chat_id), "text": _fit_text(text)}
        if reply_markup is not None:
            params["reply_markup"] = reply_markup
        return await self.call("sendMessage", params)

    async def answer_callback_query(self, callback_query_id: str) -> Any:
        return await self.call("answerCallbackQuery", {"callback_query_id": callback_query_id})

    async def set_webhook(self, url: str, secret_token: str) -> Any:
        return await self.call("setWebhook", {"url": url, "secret_token": secret_token})


async def _json_or_none(response: Any) -> Any:
    try:
        return await response.json(content_type=None)
    except ValueError:
        return None


def _retry_after(body: Any) -> float | None:
    parameters = body.get("parameters") if isinstance(body, dict) else None
    value = parameters.get("retry_after") if isinstance(parameters, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def _chat_id(recipient_id: str) -> int | str:
    """A chat id as Telegram takes it: an integer, or ``@channelusername``."""
    try:
        return int(recipient_id)
    except ValueError:
        return recipient_id


def _fit_text(text: str) -> str:
    text = text or "\u2026"  # Telegram refuses an empty text
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "\u2026"


class TelegramOutputChannel(OutputChannel):
    """Sends replies with ``sendMessage``; buttons as an inline keyboard."""

    name: ClassVar[str] = "telegram"

    def __init__(self, api: TelegramBotApi, memory_size: int = 10_000) -> None:
        self.api = api
        self.memory_size = memory_size
        self._long_payloads: OrderedDict[str, str] = OrderedDict()

    async def send_text(self, recipient_id: str, text: str) -> None:
        await self.api.send_message(recipient_id, text)

    async def send_buttons(self, recipient_id: str, text: str, buttons: list[Button]) -> None:
        keyboard = [[{"text": button.title, "callback_data": self.callback_data(button.payload)}] for button in buttons]
        await self.api.send_message(recipient_id, text, {"inline_keyboard": keyboard})

    def callback_data(self, payload: str) -> str:
        """The ``callback_data`` standing for ``payload``: itself when it fits 64 bytes, else a remembered hash."""
        if len(payload.encode("utf-8")) <= CALLBACK_DATA_LIMIT and not payload.startswith(LONG_PAYLOAD_PREFIX):
            return payload
        digest = hashlib.sha256(payload.encode("utf-8", "surrogatepass")).digest()[:18]
        data = LONG_PAYLOAD_PREFIX + base64.urlsafe_b64encode(digest).decode("ascii")
        self._long_payloads[data] = payload
        self._long_payloads.move_to_end(data)
        while len(self._long_payloads) > self.memory_size:
            self._long_payloads.popitem(last=False)
        return data

    def payload_of(self, data: str, keyboard_message: Any = None) -> str:
        """The payload a button's ``callback_data`` stands for; an unknown hash falls back to the title of the
        pressed button in ``keyboard_message`` (the callback's message), else to the data itself."""
        if not data.startswith(LONG_PAYLOAD_PREFIX):
            return data
        if data in self._long_payloads:
            return self._long_payloads[data]
        markup = keyboard_message.get("reply_markup") if isinstance(keyboard_message, dict) else None
        rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
        for row in rows if isinstance(rows, list) else []:
            for button in row if isinstance(row, list) else []:
                if isinstance(button, dict) and button.get("callback_data") == data and isinstance(button.get("text"), str):
                    return button["text"]
        return data


class TelegramChannel(WebhookChannel):
    """Telegram updates at ``POST /webhooks/telegram``; replies through :class:`TelegramOutputChannel`."""

    name: ClassVar[str] = "telegram"
    config_model: ClassVar[type[ChannelConfig]] = TelegramConfig

    def __init__(self, config: TelegramConfig, bot_token: str, secret_token: str) -> None:
        super().__init__(config)
        if not bot_token or not secret_token:
            raise ConfigError("channels.telegram: both the bot token and the webhook secret are required")
        self.config: TelegramConfig = config
        self._secret = secret_token.encode("utf-8")
        self.api = TelegramBotApi.from_config(config, bot_token)
        self.output = TelegramOutputChannel(self.api, config.memory_size)
        self._seen = MemoryEventDedupe(config.dedup_ttl_seconds, config.memory_size)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    @classmethod
    def from_config(cls, config: ChannelConfig) -> TelegramChannel:
        if not isinstance(config, TelegramConfig):
            raise ConfigError(f"channels.telegram: expected a TelegramConfig, got {type(config).__name__}")
        token = secret_from_env(config.bot_token_env, "channels.telegram.bot_token_env")
        secret = secret_from_env(config.secret_token_env, "channels.telegram.secret_token_env")
        return cls(config, token or "", secret or "")  # an empty setting is refused by __init__

    def output_channel(self) -> OutputChannel:
        return self.output

    def routes(self, on_message: OnMessage) -> list[web.RouteDef]:
        async def receive(request: web.Request) -> web.StreamResponse:
            return await self._receive(request, on_message)

        return [web.post(WEBHOOK_PATH, receive)]

    async def start(self) -> None:
        self._stopping = False

    async def stop(self) -> None:
        """Refuse new updates (503, so Telegram redelivers them later), finish every reply in flight, close."""
        self._stopping = True
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.api.close()

    # -- inbound --------------------------------------------------------------------------------------
    async def _receive(self, request: web.Request, on_message: OnMessage) -> web.StreamResponse:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, self._secret):
            return web.json_response({"error": "forbidden"}, status=403)
        if self._stopping:
            return web.json_response({"error": "shutting down"}, status=503)
        try:
            update = await request.json()
        except ValueError:
            return web.json_response({"error": "the body is not JSON"}, status=400)
        if not isinstance(update, dict):
            return web.json_response({"error": "an update is a JSON object"}, status=400)
        update_id = update.get("update_id")
        if isinstance(update_id, int) and not isinstance(update_id, bool) and not await self._seen.claim(str(update_id)):
            logger.debug("telegram update %s seen already; ignored", update_id)
            return web.Response(status=200)
        work = self._work_of(update)
        if work is not None:
            task = asyncio.create_task(self._run(work, on_message, update_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.Response(status=200)

    def _work_of(self, update: dict[str, Any]) -> tuple[Message, str | None] | None:
        """The message an update carries and the callback query to answer first; None for other updates."""
        update_id = update.get("update_id")
        message = update.get("message")
        if isinstance(message, dict) and isinstance(message.get("text"), str):
            chat_id = _chat_of(message)
            if chat_id is None:
                return None
            return self._message(chat_id, message["text"], update_id, message), None
        query = update.get("callback_query")
        if isinstance(query, dict) and isinstance(query.get("id"), str):
            keyboard_message = query.get("message")
            chat_id = _chat_of(keyboard_message) if isinstance(keyboard_message, dict) else None
            sender = query.get("from")
            if chat_id is None and isinstance(sender, dict) and sender.get("id") is not None:
                chat_id = str(sender["id"])  # a button under an inline-mode message: answer the user directly
            data = query.get("data")
            if chat_id is None or not isinstance(data, str):
                return None  # a game button, or no chat to answer in; nothing to say
            payload = self.output.payload_of(data, keyboard_message)
            return self._message(chat_id, payload, update_id, keyboard_message, callback=True), query["id"]
        return None

    def _message(self, chat_id: str, text: str, update_id: Any, message: Any, callback: bool = False) -> Message:
        metadata: dict[str, Any] = {"update_id": update_id, "callback": callback}
        if isinstance(message, dict) and message.get("message_id") is not None:
            metadata["message_id"] = message["message_id"]
        return Message(session_id=f"telegram:{chat_id}", text=safe_text(text), channel=self.name,
                       metadata=metadata, recipient_id=chat_id)

    async def _run(self, work: tuple[Message, str | None], on_message: OnMessage, update_id: Any) -> None:
        message, callback_query_id = work
        try:
            if callback_query_id is not None:
                try:
                    await self.api.answer_callback_query(callback_query_id)
                except TelegramApiError as exc:  # the button's spinner stays a while; the reply still goes
                    logger.warning("%s", exc)
            await on_message(message, self.output)
        except Exception:  # a background task: log it, the update was acknowledged already
            logger.exception("telegram update %s: handling failed", update_id)


def _chat_of(message: dict[str, Any]) -> str | None:
    chat = message.get("chat")
    chat_id = chat.get("id") if isinstance(chat, dict) else None
    return str(chat_id) if chat_id is not None else None


__all__ = [
    "CALLBACK_DATA_LIMIT",
    "LONG_PAYLOAD_PREFIX",
    "SECRET_HEADER",
    "WEBHOOK_PATH",
    "TelegramApiError",
    "TelegramBotApi",
    "TelegramChannel",
    "TelegramConfig",
    "TelegramOutputChannel",
]
