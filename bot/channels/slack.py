"""The Slack channel: the Events API in, ``chat.postMessage`` out, Block Kit buttons and their clicks.

Routes (mounted by ``csbot serve`` under ``channels.slack``):

- ``POST /webhooks/slack/events``: Events API deliveries. ``url_verification`` is answered with its
  challenge; a ``message`` event from a person is acknowledged at once (Slack wants a 2xx within 3 seconds)
  and answered in the background. Bot messages (ours included), edits and every other subtype are
  ignored. Each event id is claimed in an :class:`EventDedupe` with a TTL (Redis when ``redis_url`` is
  set, so it holds across workers): a retried delivery (``X-Slack-Retry-Num``) of an event already
  claimed is acknowledged with ``X-Slack-No-Retry: 1`` and not handled again.
- ``POST /webhooks/slack/interactive``: interactivity payloads (form field ``payload``, JSON). A click on
  one of our Block Kit buttons comes back as a message whose text is the button's payload.

Both verify Slack's request signature: ``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{raw body}`` keyed
with the signing secret, compared in constant time; a timestamp more than five minutes off is refused.

Replies go to ``{api_base_url}/chat.postMessage`` with the bot token, in the thread when the customer's
message was in one; 5xx answers, network errors and 429s are retried (429 after its ``Retry-After``).
A session is ``slack:{team}:{channel}:{user}``; the recipient is the channel id, plus ``/{thread_ts}``
when the conversation is in a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs

from aiohttp import ClientError, ClientSession, ClientTimeout, web
from pydantic import Field

from bot.channels.base import OnMessage, OutputChannel
from bot.channels.dedupe import EventDedupe, MemoryEventDedupe, RedisEventDedupe
from bot.channels.webhook import ChannelConfig, WebhookChannel, secret_from_env
from bot.messages import Button, Message, safe_text
from csbot.errors import ConfigError, DeliveryError, StoreError

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

EVENTS_PATH = "/webhooks/slack/events"
INTERACTIVE_PATH = "/webhooks/slack/interactive"

#: How far a request's timestamp may be from our clock (Slack's recommendation: five minutes).
MAX_CLOCK_SKEW_SECONDS = 5 * 60
#: Block Kit limits: a button's text, its value, a section's text.
BUTTON_TEXT_LIMIT, BUTTON_VALUE_LIMIT, SECTION_TEXT_LIMIT = 75, 2000, 3000
#: Prefix of our buttons' ``action_id`` (unique within their actions block).
ACTION_PREFIX = "csbot_button_"

_LEADING_MENTIONS = re.compile(r"^(\s*<@[A-Z0-9]+(\|[^>]*)?>)+\s*")


class SlackAPIError(DeliveryError):
    """A Slack Web API call failed for good (refused, or still failing after every retry)."""


class SlackConfig(ChannelConfig):
    """``channels.slack``: secrets by environment variable name, where the API is, how to retry and dedupe."""

    #: Environment variable holding the app's signing secret (Basic Information > App Credentials).
    signing_secret_env: str = "SLACK_SIGNING_SECRET"
    #: Environment variable holding the bot token (``xoxb-...``, OAuth & Permissions).
    bot_token_env: str = "SLACK_BOT_TOKEN"
    #: Base URL of the Web API (a stand-in's in tests).
    api_base_url: str = "https://slack.com/api"
    #: How long a handled event id is remembered (Slack retries over a few minutes).
    dedupe_ttl_seconds: int = Field(3600, gt=0)
    #: Redis URL for the event-id store shared by several workers; None keeps them in this process.
    redis_url: str | None = None
    #: Timeout of one Web API request.
    request_timeout_seconds: float = Field(10.0, gt=0)
    #: Attempts per Web API call (5xx, 429 and network errors are retried).
    max_attempts: int = Field(5, ge=1)
    #: First backoff after a 5xx or network error; doubled each attempt.
    retry_backoff_seconds: float = Field(0.5, ge=0)
    #: The longest ``Retry-After`` (and backoff) waited for before the next attempt.
    max_retry_delay_seconds: float = Field(60.0, ge=0)


# -- signatures ------------------------------------------------------------------------------------


def sign(signing_secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature: ``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def signature_problem(signing_secret: str, headers: Any, body: bytes, now: float) -> str | None:
    """Why a request's signature is not acceptable, or None when it is."""
    timestamp = headers.get("X-Slack-Request-Timestamp")
    signature = headers.get("X-Slack-Signature")
    if not timestamp or not signature:
        return "missing signature headers"
    try:
        stamp = int(timestamp)
    except ValueError:
        return "bad timestamp"
    if abs(now - stamp) > MAX_CLOCK_SKEW_SECONDS:
        return "stale timestamp"
    expected = sign(signing_secret, timestamp, body).encode()
    if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
        return "bad signature"
    return None


# -- recipients and text ---------------------------------------------------------------------------


def recipient(channel: str, thread_ts: str | None) -> str:
    """``C123`` or, in a thread, ``C123/1700000000.000100``."""
    return f"{channel}/{thread_ts}" if thread_ts else channel


def split_recipient(recipient_id: str) -> tuple[str, str | None]:
    """The channel id and the thread (or None) a recipient id names."""
    channel, _, thread_ts = recipient_id.partition("/")
    return channel, thread_ts or None


def _thread_of(thread_ts: Any, ts: Any) -> str | None:
    """The thread a message is in: a ``thread_ts`` other than its own ``ts`` (a parent carries its own)."""
    return str(thread_ts) if thread_ts and thread_ts != ts else None


def clean_text(text: str) -> str:
    """A message's text as the customer meant it: leading @-mentions dropped, Slack's escapes undone."""
    text = _LEADING_MENTIONS.sub("", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


def button_blocks(text: str, buttons: list[Button]) -> list[dict[str, Any]]:
    """Block Kit for text with buttons: a section, then an actions block of buttons whose value is the payload."""
    blocks: list[dict[str, Any]] = []
    if text:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_TEXT_LIMIT]}})
    elements = [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": (button.title or button.payload)[:BUTTON_TEXT_LIMIT], "emoji": True},
            "value": button.payload[:BUTTON_VALUE_LIMIT],
            "action_id": f"{ACTION_PREFIX}{number}",
        }
        for number, button in enumerate(buttons)
    ]
    blocks.append({"type": "actions", "elements": elements})
    return blocks


# -- output ----------------------------------------------------------------------------------------


class SlackOutputChannel(OutputChannel):
    """Posts with ``chat.postMessage``; retries 5xx, network errors and 429 (after ``Retry-After``)."""

    name: ClassVar[str] = "slack"

    def __init__(self, config: SlackConfig, bot_token: str | None) -> None:
        self.config, self.bot_token = config, bot_token
        self._session: ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = ClientSession(timeout=ClientTimeout(total=self.config.request_timeout_seconds))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send_text(self, recipient_id: str, text: str) -> None:
        await self.post_message(recipient_id, {"text": text})

    async def send_buttons(self, recipient_id: str, text: str, buttons: list[Button]) -> None:
        fallback = text or " / ".join(button.title for button in buttons)
        await self.post_message(recipient_id, {"text": fallback, "blocks": button_blocks(text, buttons)})

    async def post_message(self, recipient_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        channel, thread_ts = split_recipient(recipient_id)
        body = {"channel": channel, **fields}
        if thread_ts:
            body["thread_ts"] = thread_ts
        return await self.call("chat.postMessage", body)

    async def call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        """One Web API call with retries; its JSON answer, or :class:`SlackAPIError`."""
        if not self.bot_token:
            raise SlackAPIError(f"{method}: no bot token (set the variable channels.slack.bot_token_env names)")
        await self.start()
        assert self._session is not None
        url = f"{self.config.api_base_url.rstrip('/')}/{method}"
        headers = {"Authorization": f"Bearer {self.bot_token}"}
        attempts = self.config.max_attempts
        for attempt in range(1, attempts + 1):
            delay = min(self.config.retry_backoff_seconds * 2 ** (attempt - 1), self.config.max_retry_delay_seconds)
            try:
                async with self._session.post(url, json=body, headers=headers) as response:
                    if response.status == 429:
                        delay = self._retry_after(response.headers.get("Retry-After"), delay)
                        reason = f"rate limited (Retry-After {response.headers.get('Retry-After')})"
                    elif response.status >= 500:
                        reason = f"HTTP {response.status}"
                    elif response.status != 200:
                        raise SlackAPIError(f"{method}: HTTP {response.status} from {url}")
                    else:
                        try:
                            answer = await response.json(content_type=None)
                        except ValueError as exc:  # it may have posted: never retried
                            raise SlackAPIError(f"{method}: the answer is not JSON") from exc
                        if isinstance(answer, dict) and answer.get("ok"):
                            return answer
                        error = answer.get("error") if isinstance(answer, dict) else answer
                        raise SlackAPIError(f"{method} refused: {error}")
            except (TimeoutError, ClientError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            if attempt == attempts:
                raise SlackAPIError(f"{method}: still failing after {attempts} attempts ({reason})")
            logger.warning("slack %s failed (%s); attempt %d of %d in %.2fs", method, reason, attempt + 1, attempts, delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_after(self, header: str | None, default: float) -> float:
        try:
            seconds = float(header) if header is not None else default
        except ValueError:
            seconds = default
        return min(max(seconds, 0.0), self.config.max_retry_delay_seconds)


# -- input -----------------------------------------------------------------------------------------


class SlackChannel(WebhookChannel):
    """Slack's Events API and interactivity in, ``chat.postMessage`` out (see the module docstring)."""

    name: ClassVar[str] = "slack"
    config_model: ClassVar[type[ChannelConfig]] = SlackConfig

    def __init__(self, config: SlackConfig, signing_secret: str, bot_token: str | None = None,
                 dedupe: EventDedupe | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__(config)
        if not signing_secret:
            raise ConfigError("channels.slack: a signing secret is required to verify Slack's requests")
        self.config: SlackConfig = config
        self.signing_secret, self.clock = signing_secret, clock
        if dedupe is None:
            dedupe = (RedisEventDedupe(config.redis_url, config.dedupe_ttl_seconds, channel="slack") if config.redis_url
                      else MemoryEventDedupe(config.dedupe_ttl_seconds))
        self.dedupe = dedupe
        self.output = SlackOutputChannel(config, bot_token)
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def from_config(cls, config: ChannelConfig) -> SlackChannel:
        if not isinstance(config, SlackConfig):
            config = SlackConfig.model_validate(config.model_dump())
        secret = secret_from_env(config.signing_secret_env, "channels.slack.signing_secret_env")
        token = secret_from_env(config.bot_token_env, "channels.slack.bot_token_env")
        if not secret:
            raise ConfigError("channels.slack.signing_secret_env: name the variable holding the signing secret")
        return cls(config, secret, token)

    def output_channel(self) -> OutputChannel:
        return self.output

    async def start(self) -> None:
        await self.dedupe.start()
        await self.output.start()

    async def stop(self) -> None:
        """Let every reply in flight finish, then close the HTTP session and the event-id store."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.output.close()
        await self.dedupe.close()

    def routes(self, on_message: OnMessage) -> list[web.RouteDef]:
        async def events(request: web.Request) -> web.StreamResponse:
            return await self._events(request, on_message)

        async def interactive(request: web.Request) -> web.StreamResponse:
            return await self._interactive(request, on_message)

        return [web.post(EVENTS_PATH, events), web.post(INTERACTIVE_PATH, interactive)]

    # -- handlers ----------------------------------------------------------------------------------
    async def _verified_body(self, request: web.Request) -> bytes:
        body = await request.read()
        problem = signature_problem(self.signing_secret, request.headers, body, self.clock())
        if problem is not None:
            logger.warning("slack request to %s refused: %s", request.path, problem)
            raise web.HTTPUnauthorized(text=problem)
        return body

    async def _events(self, request: web.Request, on_message: OnMessage) -> web.StreamResponse:
        body = await self._verified_body(request)
        try:
            payload = json.loads(body)
        except ValueError:
            raise web.HTTPBadRequest(text="the body is not JSON") from None
        if not isinstance(payload, dict):
            raise web.HTTPBadRequest(text="the body is not a JSON object")
        if payload.get("type") == "url_verification":
            return web.json_response({"challenge": payload.get("challenge", "")})
        # A retry is never worth another: we answer within the 3 seconds and dedupe by event id.
        retried = "X-Slack-Retry-Num" in request.headers
        ack = web.Response(status=200, headers={"X-Slack-No-Retry": "1"} if retried else None)
        if payload.get("type") != "event_callback":
            return ack
        message = self._message_from_event(payload)
        if message is None:
            return ack
        key = str(payload.get("event_id") or f"{message.metadata['team']}:{message.metadata['channel']}:{message.metadata['ts']}")
        try:
            first = await self.dedupe.claim(key)
        except StoreError as exc:
            logger.error("slack event %s not handled: %s", key, exc)
            raise web.HTTPServiceUnavailable(text="event store unavailable") from exc
        if not first:
            logger.info("slack event %s already handled (retry %s, %s)", key,
                        request.headers.get("X-Slack-Retry-Num"), request.headers.get("X-Slack-Retry-Reason"))
            return ack
        self._spawn(self._answer(message, on_message))
        return ack

    def _message_from_event(self, payload: dict[str, Any]) -> Message | None:
        """The customer's message in an event callback, or None for anything we do not answer."""
        event = payload.get("event")
        if not isinstance(event, dict) or event.get("type") != "message":
            return None
        if event.get("subtype") or event.get("bot_id") or event.get("bot_profile"):
            return None  # bot messages (ours too), edits, deletions, joins, ...
        user, channel, text = event.get("user"), event.get("channel"), event.get("text")
        if not isinstance(user, str) or not isinstance(channel, str) or not isinstance(text, str):
            return None
        text = clean_text(safe_text(text))
        if not text:
            return None
        team = str(event.get("team") or payload.get("team_id") or "")
        ts = str(event.get("ts") or "")
        thread_ts = _thread_of(event.get("thread_ts"), event.get("ts"))
        return Message(
            session_id=f"slack:{team}:{channel}:{user}", text=text, channel=self.name,
            recipient_id=recipient(channel, thread_ts),
            metadata={"team": team, "channel": channel, "user": user, "ts": ts, "thread_ts": thread_ts,
                      "event_id": payload.get("event_id")},
        )

    async def _interactive(self, request: web.Request, on_message: OnMessage) -> web.StreamResponse:
        body = await self._verified_body(request)
        try:
            payload = json.loads(parse_qs(body.decode("utf-8", "replace"))["payload"][0])
        except (KeyError, IndexError, ValueError):
            raise web.HTTPBadRequest(text="expected a form field 'payload' holding JSON") from None
        message = self._message_from_click(payload) if isinstance(payload, dict) else None
        if message is not None:
            self._spawn(self._answer(message, on_message))
        return web.Response(status=200)

    def _message_from_click(self, payload: dict[str, Any]) -> Message | None:
        """A button click as the message its payload is, or None for other interactions."""
        if payload.get("type") != "block_actions":
            return None
        actions = [a for a in payload.get("actions") or [] if isinstance(a, dict) and a.get("type") == "button"]
        value = actions[0].get("value") if actions else None
        user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
        channel_info = payload.get("channel") if isinstance(payload.get("channel"), dict) else {}
        container = payload.get("container") if isinstance(payload.get("container"), dict) else {}
        posted = payload.get("message") if isinstance(payload.get("message"), dict) else {}
        user_id = user.get("id")
        channel = channel_info.get("id") or container.get("channel_id")
        if not isinstance(value, str) or not value or not isinstance(user_id, str) or not isinstance(channel, str):
            return None
        team_info = payload.get("team") if isinstance(payload.get("team"), dict) else {}
        team = str(team_info.get("id") or user.get("team_id") or "")
        thread_ts = _thread_of(posted.get("thread_ts") or container.get("thread_ts"),
                               posted.get("ts") or container.get("message_ts"))
        return Message(
            session_id=f"slack:{team}:{channel}:{user_id}", text=safe_text(value), channel=self.name,
            recipient_id=recipient(channel, thread_ts),
            metadata={"team": team, "channel": channel, "user": user_id, "thread_ts": thread_ts,
                      "action_id": actions[0].get("action_id"), "button": True},
        )

    # -- background replies ------------------------------------------------------------------------
    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, message: Message, on_message: OnMessage) -> None:
        try:
            await on_message(message, self.output)
        except Exception:
            logger.exception("slack: answering %s failed", message.session_id)


__all__ = [
    "EVENTS_PATH",
    "INTERACTIVE_PATH",
    "SlackAPIError",
    "SlackChannel",
    "SlackConfig",
    "SlackOutputChannel",
    "button_blocks",
    "sign",
]
