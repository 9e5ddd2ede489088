"""The agent API (``/conversations``) over real sockets on loopback: a person takes a handed-over
conversation, reads it, answers the customer through the channel it came from, and gives it back.

The bot is the demo domain with the keyword understander of test_dialogue (no NLU model); Telegram
conversations reach the Bot API stand-in of tests/conftest.py (``telegram_api``), so an agent's message can
be seen arriving; REST cannot push, so a message to a REST conversation is refused (409) and recorded.
Transcripts go to a JSONL log in memory-store tests and to the Redis stream in the Redis test.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
from test_dialogue import GREETINGS, HANDOFF_TEXT, KeywordUnderstander

from bot.app import BotApp
from bot.channels.rest import RestChannel, RestConfig
from bot.channels.telegram import SECRET_HEADER, WEBHOOK_PATH, TelegramChannel, TelegramConfig
from bot.config import AgentsConfig, ServerConfig
from bot.dialogue import DialogueManager
from bot.domain import load_domain
from bot.server import build_app
from bot.sessions import MemorySessionStore, RedisSessionStore
from bot.sessions.handoffs import RedisHandoffList
from bot.transcripts.jsonl import JsonlTranscriptLog
from bot.transcripts.redis_stream import RedisTranscriptStream

REPO = Path(__file__).resolve().parents[2]
DEMO_DOMAIN = REPO / "configs" / "demo" / "domain.yml"
TOKEN = "agent-token-123"
TOKEN_ENV = "CSBOT_TEST_AGENT_TOKEN"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "tg-secret"
CHAT = 5150
TG_SESSION = f"telegram:{CHAT}"
REST = "/webhooks/rest/webhook"


@pytest.fixture
def agent_token(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return TOKEN


def make_bot(tmp_path: Path, store=None, sink=None, handoffs=None) -> BotApp:
    sink = sink if sink is not None else JsonlTranscriptLog(tmp_path / "transcripts.jsonl")
    manager = DialogueManager(load_domain(DEMO_DOMAIN), KeywordUnderstander(), store or MemorySessionStore(),
                              transcripts=sink)
    app = BotApp.for_manager(manager)
    if handoffs is not None:
        app.handoffs = handoffs
    return app


def server(bot: BotApp, telegram_api=None, **agents: object):
    channels = [RestChannel(RestConfig())]
    if telegram_api is not None:
        config = TelegramConfig(api_base_url=telegram_api.base_url, backoff_seconds=0.01)
        channels.append(TelegramChannel(config, telegram_api.token, SECRET))
    return build_app(bot, channels, ServerConfig(agents=AgentsConfig(token_env=TOKEN_ENV, **agents)))


def tg_update(update_id: int, text: str) -> dict:
    return {"update_id": update_id, "message": {"message_id": update_id, "date": 1700000000, "text": text,
                                                 "chat": {"id": CHAT, "type": "private"}}}


class Client:
    """Requests to the server under test: a customer on REST or Telegram, and an agent."""

    def __init__(self, http: aiohttp.ClientSession, url: str, bot: BotApp) -> None:
        self.http, self.url, self.bot = http, url, bot

    async def rest(self, sender: str, text: str) -> list[dict]:
        async with self.http.post(f"{self.url}{REST}", json={"sender": sender, "message": text}) as response:
            assert response.status == 200
            return await response.json()

    async def telegram(self, update_id: int, text: str) -> None:
        """Post an update and wait until its turn is saved (replies are sent in the background)."""
        before = await self.bot.store.load(TG_SESSION)
        count = before.turn_count if before else 0
        async with self.http.post(f"{self.url}{WEBHOOK_PATH}", json=tg_update(update_id, text),
                                  headers={SECRET_HEADER: SECRET}) as response:
            assert response.status == 200
        deadline = time.monotonic() + 10
        while True:
            state = await self.bot.store.load(TG_SESSION)
            if state is not None and state.turn_count > count:
                return
            assert time.monotonic() < deadline, "the Telegram turn was not handled"
            await asyncio.sleep(0.01)

    async def agent(self, method: str, path: str, body: object = None, headers: dict | None = None) -> tuple[int, dict]:
        async with self.http.request(method, f"{self.url}{path}", json=body,
                                     headers=AUTH if headers is None else headers) as response:
            return response.status, await response.json()


async def serving(loopback_server, bot, telegram_api=None, **agents):
    """(context manager, bot started) — the caller enters it."""
    await bot.start()
    return loopback_server(server(bot, telegram_api, **agents))


# -- the round trip ---------------------------------------------------------------------------------------


def test_round_trip_over_telegram_take_answer_and_release(loopback_server, telegram_api, agent_token, tmp_path):
    bot = make_bot(tmp_path)

    async def scenario():
        async with await serving(loopback_server, bot, telegram_api) as url, aiohttp.ClientSession() as http:
            c = Client(http, url, bot)
            assert await c.agent("GET", "/conversations?handoff=true") == (200, {"conversations": []})
            await c.telegram(1, "hello")
            await c.telegram(2, "I want to talk to a person")
            await telegram_api.wait_for("sendMessage", 2)
            assert telegram_api.sent()[-1]["text"] == HANDOFF_TEXT
            await c.telegram(3, "hello?")  # handed over: the bot stays silent
            status, listed = await c.agent("GET", "/conversations?handoff=true")
            assert status == 200 and [item["id"] for item in listed["conversations"]] == [TG_SESSION]
            item = listed["conversations"][0]
            assert item["channel"] == "telegram" and item["recipient_id"] == str(CHAT)
            assert item["turn_count"] == 3 and item["last_message"] == "hello?"
            assert item["reason"] == "the customer asked for a person" and item["handed_over_at"] > 0

            status, convo = await c.agent("GET", f"/conversations/{TG_SESSION}")
            assert status == 200 and convo["handoff"] is True and convo["channel"] == "telegram"
            assert convo["turn_count"] == 3 and convo["transcript_source"] == "jsonl"
            assert [t["user_text"] for t in convo["transcript"]] == ["hello", "I want to talk to a person", "hello?"]
            assert [t["source"] for t in convo["transcript"]] == ["template", "handoff", "silent"]

            body = {"author": "Ann", "text": "Hi, Ann here. Which order?",
                    "buttons": [{"title": "Order 48213", "payload": "48213"}]}
            status, answer = await c.agent("POST", f"/conversations/{TG_SESSION}/messages", body)
            assert status == 200 and answer["delivered"] is True
            sent = (await telegram_api.wait_for("sendMessage", 3))[-1]
            assert sent["text"] == "Hi, Ann here. Which order?" and str(sent["chat_id"]) == str(CHAT)
            assert sent["reply_markup"]["inline_keyboard"][0][0]["text"] == "Order 48213"
            status, convo = await c.agent("GET", f"/conversations/{TG_SESSION}")
            last = convo["transcript"][-1]
            assert (last["source"], last["author"]) == ("agent", "Ann")
            assert last["reply"]["messages"][0]["text"] == "Hi, Ann here. Which order?"
            assert all(t["author"] == "" for t in convo["transcript"][:-1])

            status, released = await c.agent("POST", f"/conversations/{TG_SESSION}/release")
            assert status == 200 and released["was_listed"] is True
            assert await c.agent("GET", "/conversations") == (200, {"conversations": []})
            await c.telegram(4, "hello")
            replies = await telegram_api.wait_for("sendMessage", 4)
            assert replies[-1]["text"] in GREETINGS
            status, error = await c.agent("POST", f"/conversations/{TG_SESSION}/messages", {"author": "Ann", "text": "x"})
            assert status == 409 and "not handed over" in error["error"]["message"]
            async with http.get(f"{url}/metrics") as response:
                metrics = await response.text()
        await bot.stop()
        return metrics

    metrics = asyncio.run(scenario())
    assert 'csbot_http_requests_total{channel="agents",status="200"} 7.0' in metrics
    assert 'csbot_http_requests_total{channel="agents",status="409"} 1.0' in metrics
    assert 'channel="server"' not in metrics  # the agent routes are not counted as the server's own


def test_rest_conversation_fails_until_handed_over_and_cannot_be_pushed_to(loopback_server, agent_token, tmp_path):
    bot = make_bot(tmp_path)

    async def scenario():
        async with await serving(loopback_server, bot) as url, aiohttp.ClientSession() as http:
            c = Client(http, url, bot)
            assert (await c.rest("alice", "the weather on mars"))[0]["text"] != HANDOFF_TEXT
            assert await c.agent("GET", "/conversations") == (200, {"conversations": []})
            assert (await c.rest("alice", "what about jupiter"))[0]["text"] == HANDOFF_TEXT
            status, listed = await c.agent("GET", "/conversations")
            assert [item["id"] for item in listed["conversations"]] == ["rest:alice"]
            assert listed["conversations"][0]["last_message"] == "what about jupiter"
            assert await c.rest("alice", "anyone?") == []  # silent while handed over
            status, error = await c.agent("POST", "/conversations/rest:alice/messages", {"author": "Bo", "text": "Hi"})
            assert status == 409 and "REST has no push" in error["error"]["message"]
            status, convo = await c.agent("GET", "/conversations/rest:alice")
            undelivered = convo["transcript"][-1]
            assert undelivered["source"] == "undelivered" and undelivered["author"] == "Bo"
            assert "REST has no push" in undelivered["decision"]
            assert undelivered["reply"]["messages"] == [{"text": "Hi"}]
            assert (await c.agent("POST", "/conversations/rest:alice/release"))[0] == 200
            assert (await c.rest("alice", "hello"))[0]["text"] in GREETINGS
        await bot.stop()

    asyncio.run(scenario())


def test_redis_store_stream_and_list_round_trip(loopback_server, agent_token, redis_url, tmp_path):
    bot = make_bot(tmp_path, store=RedisSessionStore(redis_url), sink=RedisTranscriptStream(redis_url),
                   handoffs=RedisHandoffList(redis_url))

    async def scenario():
        async with await serving(loopback_server, bot) as url, aiohttp.ClientSession() as http:
            c = Client(http, url, bot)
            await c.rest("carol", "I need a human")
            other = RedisHandoffList(redis_url)  # what another worker sees
            assert [info.session_id for info in await other.list()] == ["rest:carol"]
            status, convo = await c.agent("GET", "/conversations/rest:carol")
            assert status == 200 and convo["transcript_source"] == "redis" and convo["handoff"] is True
            assert [t["user_text"] for t in convo["transcript"]] == ["I need a human"]
            assert (await c.agent("POST", "/conversations/rest:carol/release"))[0] == 200
            assert await other.list() == []
            await other.close()
        await bot.stop()

    asyncio.run(scenario())


# -- a reply that could not be delivered ----------------------------------------------------------------------


def test_undelivered_replies_are_recorded_and_an_agent_gets_502(loopback_server, telegram_api, agent_token, tmp_path):
    bot = make_bot(tmp_path)

    async def scenario():
        async with await serving(loopback_server, bot, telegram_api) as url, aiohttp.ClientSession() as http:
            c = Client(http, url, bot)
            telegram_api.fail_next(1, status=400)  # refused for good: a 4xx is not retried
            await c.telegram(1, "hello")
            await c.telegram(2, "a person please")
            await telegram_api.wait_for("sendMessage", 1)
            telegram_api.fail_next(5, status=500)  # still failing after every retry
            status, error = await c.agent("POST", f"/conversations/{TG_SESSION}/messages", {"author": "Cy", "text": "Hi"})
            assert status == 502 and "HTTP 500" in error["error"]["message"]
            status, convo = await c.agent("GET", f"/conversations/{TG_SESSION}")
        await bot.stop()
        return convo

    convo = asyncio.run(scenario())
    sources = [(t["source"], t["author"]) for t in convo["transcript"]]
    assert sources == [("template", ""), ("undelivered", ""), ("handoff", ""), ("undelivered", "Cy")]
    first_failure, agent_failure = convo["transcript"][1], convo["transcript"][3]
    assert "HTTP 400" in first_failure["decision"] and first_failure["user_text"] == "hello"
    assert first_failure["reply"]["messages"][0]["text"] in GREETINGS
    assert "HTTP 500" in agent_failure["decision"] and agent_failure["reply"]["messages"] == [{"text": "Hi"}]
    assert len(telegram_api.sent()) == 1  # only the hand-over notice arrived


# -- bad requests ----------------------------------------------------------------------------------------------


def test_authentication(loopback_server, agent_token, tmp_path):
    bot = make_bot(tmp_path)

    async def scenario():
        async with await serving(loopback_server, bot) as url, aiohttp.ClientSession() as http:
            c = Client(http, url, bot)
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                            {"Authorization": TOKEN}):
                for method, path in (("GET", "/conversations"), ("GET", "/conversations/rest:x"),
                                     ("POST", "/conversations/rest:x/release")):
                    status, error = await c.agent(method, path, headers=headers)
                    assert status == 401 and error["error"]["status"] == 401, (headers, path)
            assert (await c.agent("GET", "/conversations"))[0] == 200
        await bot.stop()

    asyncio.run(scenario())


def test_without_the_token_variable_every_route_answers_503_naming_it(loopback_server, monkeypatch, tmp_path,
                                                                      caplog):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    bot = make_bot(tmp_path)

    async def scenario():
        async with await serving(loopback_server, bot) as url, aiohttp.ClientSession() as http:
            c = Client(http, url, bot)
            for method, path in (("GET", "/conversations"), ("GET", "/conversations/rest:x"),
                                 ("POST", "/conversations/rest:x/messages"), ("POST", "/conversations/rest:x/release")):
                status, error = await c.agent(method, path, {"author": "a", "text": "b"})
                assert status == 503 and TOKEN_ENV in error["error"]["message"], path
        await bot.stop()

    with caplog.at_level("WARNING", logger="bot.server.agents"):
        asyncio.run(scenario())
    assert sum(TOKEN_ENV in record.getMessage() for record in caplog.records) == 1


def test_disabled_agent_api_is_not_mounted(loopback_server, agent_token, tmp_path):
    bot = make_bot(tmp_path)

    async def scenario():
        async with await serving(loopback_server, bot, enabled=False) as url, aiohttp.ClientSession() as http:
            assert (await Client(http, url, bot).agent("GET", "/conversations"))[0] == 404
        await bot.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize(("body", "field"), [
    ({"text": "hi"}, "author"),
    ({"author": "Ann"}, "text"),
    ({"author": "Ann", "text": 5}, "text"),
    ({"author": "", "text": "hi"}, "author"),
    ({"author": "Ann", "text": "hi", "buttons": [{"title": "x"}]}, "buttons.0.payload"),
    ({"author": "Ann", "text": "hi", "color": "red"}, "color"),
])
def test_bad_message_bodies_are_400_naming_the_field(loopback_server, agent_token, tmp_path, body, field):
    bot = make_bot(tmp_path)

    async def scenario():
        async with await serving(loopback_server, bot) as url, aiohttp.ClientSession() as http:
            c = Client(http, url, bot)
            await c.rest("dan", "a person please")
            status, error = await c.agent("POST", "/conversations/rest:dan/messages", body)
        await bot.stop()
        return status, error

    status, error = asyncio.run(scenario())
    assert status == 400 and error["error"]["field"] == field


def test_unknown_conversations_are_404_and_only_handed_over_ones_are_listed(loopback_server, agent_token, tmp_path):
    bot = make_bot(tmp_path)

    async def scenario():
        async with await serving(loopback_server, bot) as url, aiohttp.ClientSession() as http:
            c = Client(http, url, bot)
            for method, path in (("GET", "/conversations/rest:nobody"), ("POST", "/conversations/rest:nobody/release"),
                                 ("POST", "/conversations/rest:nobody/messages")):
                status, error = await c.agent(method, path, {"author": "a", "text": "b"})
                assert status == 404 and "rest:nobody" in error["error"]["message"], path
            status, error = await c.agent("GET", "/conversations?handoff=false")
            assert status == 400 and error["error"]["field"] == "handoff"
            await c.rest("eve", "hello")
            status, error = await c.agent("POST", "/conversations/rest:eve/messages", {"author": "a", "text": "b"})
            assert status == 409
            status, convo = await c.agent("GET", "/conversations/rest:eve")
            assert status == 200 and convo["handoff"] is False and convo["turn_count"] == 1
            assert "rest:nobody" not in bot.store._data  # a 404 stores nothing
        await bot.stop()

    asyncio.run(scenario())
