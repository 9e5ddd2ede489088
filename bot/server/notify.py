"""The outgoing hand-over webhook: a helpdesk told (POST, JSON) each time a conversation is handed over.

Set ``server.agents.handoff_webhook.url`` (section :class:`~bot.config.HandoffWebhookConfig`). Each hand-over
POSTs::

    {"event": "handoff", "session_id", "channel", "reason", "handed_over_at",
     "last_messages": [{"author": "customer"|"bot", "text"}], "conversation_url": "/conversations/{id}"}

with ``X-Csbot-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` when ``secret_env`` names the key's
environment variable (the helpdesk recomputes it over the bytes it received and compares in constant time).
Each notification is sent by a tracked background task, so the customer's turn never waits for it; an
attempt gives up after ``timeout_seconds``; a 5xx, a 429 or a failed connection is retried up to
``max_attempts`` in all, after an exponential backoff (or the ``Retry-After`` the helpdesk asked for, up to
:attr:`HandoffNotifier.max_retry_after`). Any other answer, or the last failure, is logged with the reason.
:meth:`HandoffNotifier.stop` waits for the notifications in flight, then closes the HTTP client.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp

from bot.channels.webhook import secret_from_env

if TYPE_CHECKING:
    from aiohttp import web

    from bot.app import BotApp
    from bot.config import HandoffWebhookConfig

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Csbot-Signature"


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``: ``sha256=`` and the hex HMAC-SHA256 under ``secret``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the backoff applies instead


class HandoffNotifier:
    """Posts hand-over notifications to one URL in background tasks; ``start`` before, ``stop`` after."""

    #: The longest ``Retry-After`` honoured; a longer one waits this long instead.
    max_retry_after: float = 30.0

    def __init__(self, config: HandoffWebhookConfig, secret: str | None = None, *,
                 backoff_seconds: float = 0.5) -> None:
        if not config.url:
            raise ValueError("HandoffNotifier needs handoff_webhook.url")
        self.config, self.url, self.secret = config, config.url, secret
        self.backoff_seconds = backoff_seconds
        self._client: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[bool]] = set()

    @classmethod
    def from_config(cls, config: HandoffWebhookConfig) -> HandoffNotifier | None:
        """The notifier the section sets up, or None without a URL; a named but unset ``secret_env`` is a
        :class:`~csbot.errors.ConfigError`."""
        if not config.url:
            return None
        return cls(config, secret_from_env(config.secret_env, "server.agents.handoff_webhook.secret_env"))

    async def start(self) -> None:
        if self._client is None:
            self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.timeout_seconds))

    async def stop(self) -> None:
        """Wait for every notification in flight, then close the HTTP client."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._client is not None:
            await self._client.close()
            self._client = None

    @property
    def pending(self) -> int:
        """Notifications not yet delivered or given up."""
        return len(self._tasks)

    def notify(self, payload: dict[str, Any]) -> None:
        """Send ``payload`` in a background task (tracked; :meth:`stop` waits for it)."""
        task = asyncio.create_task(self.deliver(payload), name=f"handoff-webhook {payload.get('session_id')}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def deliver(self, payload: dict[str, Any]) -> bool:
        """POST ``payload`` with retries; True once the helpdesk answered 2xx, False (logged) when it never did."""
        await self.start()
        assert self._client is not None
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        session_id = payload.get("session_id")
        reason = "no attempt"
        for attempt in range(1, self.config.max_attempts + 1):
            wait: float | None = None
            try:
                async with self._client.post(self.url, data=body, headers=headers) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        return True
                    reason = f"HTTP {response.status}"
                    if response.status != 429 and response.status < 500:
                        break  # the helpdesk refuses it: repeating will not help
                    wait = _retry_after(response.headers.get("Retry-After"))
            except (TimeoutError, aiohttp.ClientError) as exc:
                reason = f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
            if attempt < self.config.max_attempts:
                pause = self.backoff_seconds * 2 ** (attempt - 1) if wait is None else wait
                await asyncio.sleep(min(pause, self.max_retry_after))
        log.error("hand-over webhook for session %s not delivered to %s after %d attempt(s): %s", session_id,
                  self.url, attempt, reason)
        return False


def handoff_payload(session_id: str, channel: str | None, reason: str, handed_over_at: float,
                    last_messages: list[dict[str, str]]) -> dict[str, Any]:
    """The JSON body of one hand-over notification."""
    return {"event": "handoff", "session_id": session_id, "channel": channel, "reason": reason,
            "handed_over_at": handed_over_at, "last_messages": last_messages,
            "conversation_url": f"/conversations/{quote(session_id, safe=':@')}"}


def mount_notifier(app: web.Application, bot: BotApp, config: HandoffWebhookConfig) -> HandoffNotifier | None:
    """Give ``bot`` the notifier ``config`` sets up (none without a URL), started and stopped with ``app``."""
    notifier = HandoffNotifier.from_config(config)
    if notifier is None:
        return None
    bot.notifier = notifier

    async def start(app: web.Application) -> None:
        await notifier.start()

    async def stop(app: web.Application) -> None:
        await notifier.stop()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return notifier


__all__ = ["SIGNATURE_HEADER", "HandoffNotifier", "handoff_payload", "mount_notifier", "sign"]
