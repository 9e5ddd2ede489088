"""The outgoing hand-over webhook over real sockets on loopback: a helpdesk stand-in (``helpdesk`` in
tests/conftest.py) receives one signed notification per hand-over, after transient failures and rate limits,
without the customer's turn waiting for it; what could not be delivered is logged with the reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from pathlib import Path

import aiohttp
import pytest
from test_dialogue import HANDOFF_TEXT, KeywordUnderstander

from bot.app import BotApp
from bot.channels.rest import RestChannel, RestConfig
from bot.config import AgentsConfig, HandoffWebhookConfig, ServerConfig
from bot.dialogue import DialogueManager
from bot.domain import load_domain
from bot.server import build_app
from bot.server.notify import SIGNATURE_HEADER
from bot.sessions import MemorySessionStore
from csbot.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
DEMO_DOMAIN = REPO / "configs" / "demo" / "domain.yml"
SECRET_ENV = "CSBOT_TEST_HELPDESK_SECRET"
SECRET = "helpdesk-signing-key"


class Recorder:
    """The domain's own hand-over hook: it must still run beside the app's."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, state, reason: str) -> None:
        self.calls.append(state.session_id)


def make(helpdesk, secret_env: str | None = SECRET_ENV, max_attempts: int = 3, hook=None):
    manager = DialogueManager(load_domain(DEMO_DOMAIN), KeywordUnderstander(), MemorySessionStore(), handoff_hook=hook)
    bot = BotApp.for_manager(manager)
    webhook = HandoffWebhookConfig(url=helpdesk.url, secret_env=secret_env, timeout_seconds=2, max_attempts=max_attempts)
    app = build_app(bot, [RestChannel(RestConfig())], ServerConfig(agents=AgentsConfig(handoff_webhook=webhook)))
    bot.notifier.backoff_seconds = 0.01
    return bot, app


async def chat(http: aiohttp.ClientSession, url: str, sender: str, text: str) -> list[dict]:
    async with http.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": text}) as response:
        assert response.status == 200
        return await response.json()


def test_a_transient_failure_is_retried_and_one_signed_notification_arrives(loopback_server, helpdesk, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    helpdesk.answer_next(500)
    hook = Recorder()
    bot, app = make(helpdesk, hook=hook)

    async def scenario():
        await bot.start()
        async with loopback_server(app) as url, aiohttp.ClientSession() as http:
            await chat(http, url, "ann", "hello")
            assert (await chat(http, url, "ann", "I want a person"))[0]["text"] == HANDOFF_TEXT
            await helpdesk.wait_for(1)
            await chat(http, url, "ann", "still there?")  # silent: no second hand-over, no second notification
        await bot.stop()

    asyncio.run(scenario())
    assert hook.calls == ["rest:ann"]
    assert [status for status, _, _ in helpdesk.received] == [500, 200]
    assert len(helpdesk.delivered()) == 1
    _, headers, body = helpdesk.received[1]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers[SIGNATURE_HEADER], expected)
    assert helpdesk.received[0][2] == body  # the retry is the same notification
    payload = json.loads(body)
    assert payload["event"] == "handoff" and payload["session_id"] == "rest:ann" and payload["channel"] == "rest"
    assert payload["reason"] == "the customer asked for a person"
    assert payload["conversation_url"] == "/conversations/rest:ann"
    assert abs(payload["handed_over_at"] - time.time()) < 60
    assert payload["last_messages"][0] == {"author": "customer", "text": "hello"}
    assert payload["last_messages"][-1] == {"author": "customer", "text": "I want a person"}
    assert [m["author"] for m in payload["last_messages"]] == ["customer", "bot", "customer"]


def test_the_turn_does_not_wait_and_retry_after_is_honoured(loopback_server, helpdesk, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    helpdesk.answer_next(429, {"Retry-After": "1"})
    bot, app = make(helpdesk)

    async def scenario():
        await bot.start()
        async with loopback_server(app) as url, aiohttp.ClientSession() as http:
            started = time.monotonic()
            assert (await chat(http, url, "bo", "a human please"))[0]["text"] == HANDOFF_TEXT
            answered = time.monotonic() - started
            await helpdesk.wait_for(1)
            delivered = time.monotonic() - started
        await bot.stop()
        return answered, delivered

    answered, delivered = asyncio.run(scenario())
    assert answered < 0.8 <= 1.0 <= delivered
    assert [status for status, _, _ in helpdesk.received] == [429, 200]


def test_an_undeliverable_notification_is_logged_and_drained_on_stop(loopback_server, helpdesk, caplog):
    helpdesk.answer_next(500, times=5)
    bot, app = make(helpdesk, secret_env=None, max_attempts=2)

    async def scenario():
        await bot.start()
        async with loopback_server(app) as url, aiohttp.ClientSession() as http:
            await chat(http, url, "cy", "agent")
        # leaving the server ran its cleanup: the notifier waited for the notification in flight
        assert bot.notifier.pending == 0
        await bot.stop()

    with caplog.at_level("ERROR", logger="bot.server.notify"):
        asyncio.run(scenario())
    assert [status for status, _, _ in helpdesk.received] == [500, 500]
    assert SIGNATURE_HEADER not in helpdesk.received[0][1]  # no secret configured: unsigned
    assert any("rest:cy" in r.getMessage() and "HTTP 500" in r.getMessage() and "2 attempt" in r.getMessage()
               for r in caplog.records)


def test_a_refusal_is_not_retried(loopback_server, helpdesk, monkeypatch, caplog):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    helpdesk.answer_next(400)
    bot, app = make(helpdesk)

    async def scenario():
        await bot.start()
        async with loopback_server(app) as url, aiohttp.ClientSession() as http:
            await chat(http, url, "di", "a person")
        await bot.stop()

    with caplog.at_level("ERROR", logger="bot.server.notify"):
        asyncio.run(scenario())
    assert [status for status, _, _ in helpdesk.received] == [400]
    assert any("HTTP 400" in r.getMessage() for r in caplog.records)


def test_a_named_but_unset_secret_is_a_config_error(helpdesk, monkeypatch):
    monkeypatch.delenv(SECRET_ENV, raising=False)
    with pytest.raises(ConfigError, match=SECRET_ENV):
        make(helpdesk)
