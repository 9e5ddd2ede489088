"""The Slack channel over real sockets: Slack's requests come from an aiohttp client, signed as Slack signs
them, to a bare aiohttp app on loopback that mounts only this channel's routes; replies go to the Slack Web
API stand-in (``slack_api`` in tests/conftest.py). The bot is the demo domain with the keyword understander.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.parse
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from test_dialogue import KeywordUnderstander

from bot.app import BotApp
from bot.channels.dedupe import MemoryEventDedupe, RedisEventDedupe
from bot.channels.slack import (
    EVENTS_PATH,
    INTERACTIVE_PATH,
    SlackAPIError,
    SlackChannel,
    SlackConfig,
    sign,
)
from bot.dialogue import DialogueManager
from bot.domain import load_domain
from bot.messages import Button
from bot.sessions import MemorySessionStore
from csbot.errors import ConfigError, StoreUnavailableError

REPO = Path(__file__).resolve().parents[2]
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-test-token"
TEAM, CHANNEL, USER = "T0001", "C0001", "U0001"


def make_bot() -> BotApp:
    manager = DialogueManager(load_domain(REPO / "configs" / "demo" / "domain.yml"), KeywordUnderstander(),
                              MemorySessionStore())
    return BotApp.for_manager(manager)


def signed_headers(body: bytes, *, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": sign(secret, stamp, body)}


def message_event(text: str, *, event_id: str = "Ev0001", ts: str = "1700000000.000100", **extra) -> dict:
    event = {"type": "message", "channel": CHANNEL, "user": USER, "text": text, "ts": ts, "team": TEAM,
             "channel_type": "im", **extra}
    return {"token": "legacy", "team_id": TEAM, "api_app_id": "A0001", "type": "event_callback",
            "event_id": event_id, "event_time": 1700000000, "event": event}


class Harness:
    """The channel's routes on a loopback server, a client that speaks as Slack, and what the bot answered."""

    def __init__(self, slack_api, bot: BotApp, channel: SlackChannel, hold: asyncio.Event | None) -> None:
        self.slack_api, self.bot, self.channel, self.hold = slack_api, bot, channel, hold
        self.handled: list = []  # (message, reply) per answered message
        self.server: TestServer | None = None
        self.client: aiohttp.ClientSession | None = None

    async def on_message(self, message, output):
        if self.hold is not None:
            await self.hold.wait()
        reply = await self.bot.handle(message, output)
        self.handled.append((message, reply))
        return reply

    def url(self, path: str) -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict, bytes]:
        assert self.client is not None
        async with self.client.post(self.url(path), data=body, headers=headers) as response:
            return response.status, dict(response.headers), await response.read()

    async def event(self, payload: dict, **headers: str) -> tuple[int, dict, bytes]:
        body = json.dumps(payload).encode()
        return await self.post(EVENTS_PATH, body, {"Content-Type": "application/json", **signed_headers(body), **headers})

    async def click(self, payload: dict) -> tuple[int, dict, bytes]:
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        return await self.post(INTERACTIVE_PATH, body,
                               {"Content-Type": "application/x-www-form-urlencoded", **signed_headers(body)})

    async def settle(self) -> None:
        """Wait until every background reply has finished."""
        for _ in range(500):
            if not self.channel._tasks:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("background replies did not finish")


@contextlib.asynccontextmanager
async def running(slack_api, *, hold: asyncio.Event | None = None, channel: SlackChannel | None = None, **settings):
    config = SlackConfig(api_base_url=slack_api.base_url, retry_backoff_seconds=0.01, **settings)
    channel = channel or SlackChannel(config, SECRET, TOKEN)
    bot = make_bot()
    harness = Harness(slack_api, bot, channel, hold)
    app = web.Application()
    app.add_routes(channel.routes(harness.on_message))
    harness.server = TestServer(app, host="127.0.0.1")
    async with bot:
        await channel.start()
        await harness.server.start_server()
        harness.client = aiohttp.ClientSession()
        try:
            yield harness
        finally:
            await harness.client.close()
            await harness.server.close()
            await channel.stop()


# -- signatures ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["bad", "missing", "stale", "future", "garbled timestamp", "other secret"])
def test_unsigned_or_badly_signed_requests_are_refused(slack_api, case):
    async def scenario():
        async with running(slack_api) as h:
            body = json.dumps(message_event("hi")).encode()
            headers = signed_headers(body)
            if case == "bad":
                headers["X-Slack-Signature"] = "v0=" + "0" * 64
            elif case == "missing":
                headers = {}
            elif case == "stale":
                headers = signed_headers(body, timestamp=int(time.time()) - 6 * 60)
            elif case == "future":
                headers = signed_headers(body, timestamp=int(time.time()) + 6 * 60)
            elif case == "garbled timestamp":
                headers["X-Slack-Request-Timestamp"] = "yesterday"
            else:
                headers = signed_headers(body, secret="another-app")
            for path in (EVENTS_PATH, INTERACTIVE_PATH):
                status, _, _ = await h.post(path, body, headers)
                assert status == 401, (case, path)
            # a body changed after signing fails too
            status, _, _ = await h.post(EVENTS_PATH, body + b" ", signed_headers(body))
            assert status == 401
            await asyncio.sleep(0.1)
            await h.settle()
            assert h.handled == [] and slack_api.attempts == []

    asyncio.run(scenario())


def test_a_timestamp_within_five_minutes_is_accepted(slack_api):
    async def scenario():
        async with running(slack_api) as h:
            body = json.dumps(message_event("thanks")).encode()
            status, _, _ = await h.post(EVENTS_PATH, body, signed_headers(body, timestamp=int(time.time()) - 4 * 60))
            assert status == 200
            await slack_api.wait_for_calls(1)

    asyncio.run(scenario())


def test_url_verification_is_answered_with_its_challenge(slack_api):
    async def scenario():
        async with running(slack_api) as h:
            challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
            status, _, body = await h.event({"token": "legacy", "challenge": challenge, "type": "url_verification"})
            assert status == 200 and json.loads(body) == {"challenge": challenge}
            unsigned = json.dumps({"challenge": challenge, "type": "url_verification"}).encode()
            assert (await h.post(EVENTS_PATH, unsigned, {}))[0] == 401

    asyncio.run(scenario())


# -- messages in, replies out ----------------------------------------------------------------------


def test_a_message_is_acknowledged_at_once_and_answered_with_chat_post_message(slack_api):
    async def scenario():
        hold = asyncio.Event()
        async with running(slack_api, hold=hold) as h:
            started = time.monotonic()
            status, headers, _ = await h.event(message_event("<@UBOT> thanks &amp; bye?"))
            assert status == 200 and time.monotonic() - started < 1.0
            assert "X-Slack-No-Retry" not in headers
            assert slack_api.calls == []  # the reply is still held back: the ack did not wait for it
            hold.set()
            calls = await slack_api.wait_for_calls(1)
            await h.settle()
            [(message, reply)] = h.handled
            assert message.text == "thanks & bye?"
            assert message.session_id == f"slack:{TEAM}:{CHANNEL}:{USER}" and message.channel == "slack"
            assert calls == [{"channel": CHANNEL, "text": reply.messages[0].text}]
            assert reply.messages[0].text in ("You're welcome! Anything else?", "Happy to help.")

    asyncio.run(scenario())


def test_a_message_in_a_thread_is_answered_in_the_thread(slack_api):
    async def scenario():
        async with running(slack_api) as h:
            thread = "1700000000.000001"
            await h.event(message_event("thanks", ts="1700000050.000200", thread_ts=thread))
            [call] = await slack_api.wait_for_calls(1)
            assert call["channel"] == CHANNEL and call["thread_ts"] == thread
            await h.settle()
            assert h.handled[0][0].recipient_id == f"{CHANNEL}/{thread}"

    asyncio.run(scenario())


@pytest.mark.parametrize("extra", [
    {"subtype": "bot_message", "bot_id": "B0001"},
    {"bot_id": "B0STANDIN", "app_id": "A0001"},  # our own post, as Slack echoes it
    {"subtype": "message_changed", "message": {"type": "message", "user": USER, "text": "thanks"}},
    {"subtype": "message_deleted"},
    {"subtype": "channel_join"},
])
def test_bot_messages_edits_and_other_subtypes_are_ignored(slack_api, extra):
    async def scenario():
        async with running(slack_api) as h:
            status, _, _ = await h.event(message_event("thanks", **extra))
            assert status == 200
            await asyncio.sleep(0.2)
            await h.settle()
            assert h.handled == [] and slack_api.attempts == []
            # other event types are acknowledged and ignored too
            reaction = {"type": "event_callback", "team_id": TEAM, "event_id": "Ev0009",
                        "event": {"type": "reaction_added", "user": USER, "reaction": "thumbsup"}}
            assert (await h.event(reaction))[0] == 200
            await asyncio.sleep(0.1)
            assert h.handled == []

    asyncio.run(scenario())


def test_a_retried_delivery_is_handled_once(slack_api):
    async def scenario():
        async with running(slack_api) as h:
            first = await h.event(message_event("thanks", event_id="EvDUP"))
            retry = await h.event(message_event("thanks", event_id="EvDUP"),
                                  **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"})
            assert first[0] == retry[0] == 200
            assert retry[1].get("X-Slack-No-Retry") == "1"
            await slack_api.wait_for_calls(1)
            await asyncio.sleep(0.2)
            await h.settle()
            assert len(h.handled) == 1 and len(slack_api.calls) == 1
            # another event with the same text is a new message, and answered
            await h.event(message_event("thanks", event_id="EvNEW", ts="1700000001.000100"))
            await slack_api.wait_for_calls(2)

    asyncio.run(scenario())


def test_an_http_timeout_retry_is_acknowledged_so_slack_stops_and_not_handled_again(slack_api):
    async def scenario():
        hold = asyncio.Event()
        async with running(slack_api, hold=hold) as h:
            await h.event(message_event("thanks", event_id="EvSLOW"))
            # still answering the first delivery when Slack's retry arrives
            status, headers, _ = await h.event(message_event("thanks", event_id="EvSLOW"),
                                               **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
            assert status == 200 and headers.get("X-Slack-No-Retry") == "1"
            hold.set()
            await slack_api.wait_for_calls(1)
            await asyncio.sleep(0.2)
            await h.settle()
            assert len(h.handled) == 1 and len(slack_api.calls) == 1

    asyncio.run(scenario())


def test_the_event_id_store_is_shared_by_workers_through_redis(slack_api, redis_url):
    async def scenario():
        config = SlackConfig(api_base_url=slack_api.base_url, retry_backoff_seconds=0.01, redis_url=redis_url)
        worker_a, worker_b = SlackChannel(config, SECRET, TOKEN), SlackChannel(config, SECRET, TOKEN)
        assert isinstance(worker_a.dedupe, RedisEventDedupe)
        async with running(slack_api, channel=worker_a) as a, running(slack_api, channel=worker_b) as b:
            await a.event(message_event("thanks", event_id="EvWORKERS"))
            status, headers, _ = await b.event(message_event("thanks", event_id="EvWORKERS"),
                                               **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
            assert status == 200 and headers.get("X-Slack-No-Retry") == "1"
            await slack_api.wait_for_calls(1)
            await asyncio.sleep(0.2)
            await a.settle()
            await b.settle()
            assert len(a.handled) + len(b.handled) == 1 and len(slack_api.calls) == 1

    asyncio.run(scenario())


def test_an_unreachable_redis_fails_at_start_with_a_clear_error():
    async def scenario():
        dedupe = RedisEventDedupe("redis://127.0.0.1:1/0", ttl_seconds=60, channel="slack", socket_timeout=0.5)
        with pytest.raises(StoreUnavailableError, match="slack event dedupe"):
            await dedupe.start()
        await dedupe.close()

    asyncio.run(scenario())


def test_the_memory_event_store_forgets_after_its_ttl():
    async def scenario():
        now = [100.0]
        dedupe = MemoryEventDedupe(ttl_seconds=60, clock=lambda: now[0])
        assert await dedupe.claim("Ev1") is True
        assert await dedupe.claim("Ev1") is False
        assert await dedupe.claim("Ev2") is True
        now[0] += 61
        assert await dedupe.claim("Ev1") is True

    asyncio.run(scenario())


# -- buttons ---------------------------------------------------------------------------------------


def test_buttons_are_block_kit_and_a_click_comes_back_as_the_payload(slack_api):
    async def scenario():
        async with running(slack_api) as h:
            await h.event(message_event("cancel order 51730", event_id="EvC1"))
            [call] = await slack_api.wait_for_calls(1)
            assert call["text"] == "Do you want me to cancel order 51730?"
            section, actions = call["blocks"]
            assert section == {"type": "section", "text": {"type": "mrkdwn", "text": "Do you want me to cancel order 51730?"}}
            assert actions["type"] == "actions"
            assert [(b["type"], b["text"]["type"], b["text"]["text"], b["value"]) for b in actions["elements"]] == [
                ("button", "plain_text", "Yes, cancel it", "yes"), ("button", "plain_text", "No, keep it", "no")]
            assert len({b["action_id"] for b in actions["elements"]}) == 2
            # the customer clicks "Yes, cancel it"
            clicked = actions["elements"][0]
            payload = {
                "type": "block_actions", "user": {"id": USER, "username": "jane", "team_id": TEAM},
                "api_app_id": "A0001", "token": "legacy", "trigger_id": "123.456.abc",
                "team": {"id": TEAM, "domain": "northwind"}, "channel": {"id": CHANNEL, "name": "directmessage"},
                "container": {"type": "message", "message_ts": "1700000002.000100", "channel_id": CHANNEL, "is_ephemeral": False},
                "message": {"type": "message", "bot_id": "B0STANDIN", "text": call["text"], "ts": "1700000002.000100",
                            "blocks": call["blocks"]},
                "response_url": "https://hooks.slack.com/actions/T0001/1/abc",
                "actions": [{"type": "button", "action_id": clicked["action_id"], "block_id": "b1",
                             "text": clicked["text"], "value": clicked["value"], "action_ts": "1700000003.000"}],
            }
            status, _, _ = await h.click(payload)
            assert status == 200
            calls = await slack_api.wait_for_calls(2)
            await h.settle()
            assert h.handled[1][0].text == "yes" and h.handled[1][0].session_id == f"slack:{TEAM}:{CHANNEL}:{USER}"
            assert calls[1]["channel"] == CHANNEL and "thread_ts" not in calls[1]
            assert calls[1]["text"].startswith("Done: order 51730 is cancelled.")

    asyncio.run(scenario())


def test_a_click_on_buttons_in_a_thread_is_answered_in_the_thread_and_other_interactions_are_ignored(slack_api):
    async def scenario():
        async with running(slack_api) as h:
            thread = "1700000000.000001"
            payload = {
                "type": "block_actions", "user": {"id": USER, "team_id": TEAM}, "team": {"id": TEAM},
                "channel": {"id": CHANNEL},
                "container": {"type": "message", "message_ts": "1700000009.000100", "channel_id": CHANNEL,
                              "thread_ts": thread},
                "message": {"type": "message", "ts": "1700000009.000100", "thread_ts": thread},
                "actions": [{"type": "button", "action_id": "csbot_button_0", "value": "thanks"}],
            }
            assert (await h.click(payload))[0] == 200
            [call] = await slack_api.wait_for_calls(1)
            assert call["thread_ts"] == thread
            # a view submission, and a form without a payload
            assert (await h.click({"type": "view_submission", "user": {"id": USER}}))[0] == 200
            body = b"nothing=here"
            status, _, _ = await h.post(INTERACTIVE_PATH, body, signed_headers(body))
            assert status == 400
            await asyncio.sleep(0.1)
            await h.settle()
            assert len(h.handled) == 1

    asyncio.run(scenario())


# -- the Web API failing ---------------------------------------------------------------------------


def test_a_reply_survives_two_server_errors_and_arrives_once(slack_api):
    async def scenario():
        async with running(slack_api) as h:
            slack_api.fail_next(2, status=500)
            await h.event(message_event("thanks", event_id="Ev500"))
            await slack_api.wait_for_calls(1)
            await asyncio.sleep(0.2)
            await h.settle()
            assert [status for _, status in slack_api.attempts] == [500, 500, 200]
            assert len(slack_api.calls) == 1

    asyncio.run(scenario())


def test_a_rate_limited_reply_waits_for_retry_after_and_arrives_once(slack_api):
    async def scenario():
        async with running(slack_api) as h:
            slack_api.rate_limit_next(1, retry_after=1)
            await h.event(message_event("thanks", event_id="Ev429"))
            await slack_api.wait_for_calls(1)
            await asyncio.sleep(0.2)
            await h.settle()
            (first, status_1), (second, status_2) = slack_api.attempts
            assert (status_1, status_2) == (429, 200)
            assert second - first >= 0.9  # Retry-After: 1, not the 0.01 s backoff
            assert len(slack_api.calls) == 1

    asyncio.run(scenario())


def test_a_reply_that_keeps_failing_gives_up_and_stop_still_returns(slack_api):
    async def scenario():
        config = SlackConfig(api_base_url=slack_api.base_url, retry_backoff_seconds=0.01, max_attempts=3)
        channel = SlackChannel(config, SECRET, TOKEN)
        slack_api.fail_next(5, status=503)
        with pytest.raises(SlackAPIError, match="after 3 attempts"):
            await channel.output.send_text(CHANNEL, "hello")
        assert len(slack_api.attempts) == 3 and slack_api.calls == []
        # a refused call (bad token) is not retried
        refused = SlackChannel(config, SECRET, "xoxb-wrong").output
        slack_api.reset()
        with pytest.raises(SlackAPIError, match="invalid_auth"):
            await refused.send_buttons(f"{CHANNEL}/1.2", "Pick one", [Button("A", "a")])
        assert len(slack_api.attempts) == 1
        await refused.close()
        await channel.stop()

    asyncio.run(scenario())


# -- configuration ---------------------------------------------------------------------------------


def test_from_config_reads_secrets_from_the_environment(monkeypatch):
    config = SlackConfig(signing_secret_env="TEST_SLACK_SECRET", bot_token_env="TEST_SLACK_TOKEN")
    monkeypatch.delenv("TEST_SLACK_SECRET", raising=False)
    monkeypatch.setenv("TEST_SLACK_TOKEN", TOKEN)
    with pytest.raises(ConfigError, match="TEST_SLACK_SECRET"):
        SlackChannel.from_config(config)
    monkeypatch.setenv("TEST_SLACK_SECRET", SECRET)
    channel = SlackChannel.from_config(config)
    assert channel.signing_secret == SECRET and channel.output.bot_token == TOKEN
    assert isinstance(channel.dedupe, MemoryEventDedupe) and channel.output_channel() is channel.output
    assert SlackConfig().api_base_url == "https://slack.com/api"
    with pytest.raises(ValueError, match="extra"):
        SlackConfig(signing_secret="inline secrets are refused")
