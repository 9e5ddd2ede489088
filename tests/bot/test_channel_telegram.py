"""The Telegram channel over real sockets on loopback.

The channel's routes are mounted on a bare aiohttp application (not the ``csbot serve`` server) and fed
updates shaped as the Bot API documents them; its replies go to the Bot API stand-in of tests/conftest.py
(``telegram_api``), which can fail with 500s and rate-limit with 429s. The bot behind it is the demo
domain with the keyword understander of test_dialogue.py. Coroutines run with ``asyncio.run``;
``channel.stop()`` waits for every reply in flight, so a test asserts what was sent after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from test_dialogue import KeywordUnderstander

from bot.app import BotApp
from bot.channels.telegram import (
    CALLBACK_DATA_LIMIT,
    LONG_PAYLOAD_PREFIX,
    SECRET_HEADER,
    WEBHOOK_PATH,
    TelegramChannel,
    TelegramConfig,
)
from bot.cli import main
from bot.dialogue import DialogueManager
from bot.domain import load_domain
from bot.messages import Button, Message, Reply
from bot.sessions import MemorySessionStore
from csbot.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
DOMAIN_FILE = REPO / "configs" / "demo" / "domain.yml"
SECRET = "s3cret_Token-1"
CHAT = 424242


class Bot:
    """The demo bot, recording every message its channel hands it."""

    def __init__(self) -> None:
        self.understander = KeywordUnderstander()
        self.app = BotApp.for_manager(DialogueManager(load_domain(DOMAIN_FILE), self.understander, MemorySessionStore()))
        self.messages: list[Message] = []

    async def handle(self, message: Message, output) -> Reply:
        self.messages.append(message)
        return await self.app.handle(message, output)


@contextlib.asynccontextmanager
async def serving(telegram_api, on_message, **settings):
    """The channel's routes on loopback, and a client posting updates to them (with the right secret)."""
    config = TelegramConfig(api_base_url=telegram_api.base_url, backoff_seconds=0.01, **settings)
    channel = TelegramChannel(config, telegram_api.token, SECRET)
    app = web.Application()
    app.add_routes(channel.routes(on_message))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    await channel.start()
    try:
        async with ClientSession() as client:
            async def post(update, secret: str | None = SECRET) -> int:
                headers = {SECRET_HEADER: secret} if secret is not None else {}
                async with client.post(server.make_url(WEBHOOK_PATH), json=update, headers=headers) as response:
                    await response.read()
                    return response.status

            yield channel, post
    finally:
        await channel.stop()
        await server.close()


def text_update(update_id: int, text: str, chat_id: int = CHAT) -> dict:
    return {"update_id": update_id, "message": {
        "message_id": update_id + 1000, "date": 1700000000, "text": text,
        "chat": {"id": chat_id, "type": "private"}, "from": {"id": chat_id, "is_bot": False, "first_name": "Ann"}}}


def callback_update(update_id: int, data: str, keyboard: list | None = None, chat_id: int = CHAT) -> dict:
    message = {"message_id": 7, "date": 1700000000, "text": "Hi!", "chat": {"id": chat_id, "type": "private"}}
    if keyboard is not None:
        message["reply_markup"] = {"inline_keyboard": keyboard}
    return {"update_id": update_id, "callback_query": {
        "id": f"cbq-{update_id}", "from": {"id": chat_id, "is_bot": False, "first_name": "Ann"},
        "chat_instance": "-1", "message": message, "data": data}}


# -- the secret --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("secret", "status"), [(SECRET, 200), ("wrong", 403), (None, 403), (SECRET + "x", 403)])
def test_the_secret_token_header_is_checked(telegram_api, secret, status):
    bot = Bot()

    async def scenario():
        async with serving(telegram_api, bot.handle) as (_channel, post):
            assert await post(text_update(1, "hello"), secret=secret) == status

    asyncio.run(scenario())
    assert len(bot.messages) == (1 if status == 200 else 0)
    assert len(telegram_api.sent()) == (1 if status == 200 else 0)


# -- messages and buttons ----------------------------------------------------------------------------


def test_a_text_message_is_answered_with_send_message(telegram_api):
    bot = Bot()

    async def scenario():
        async with serving(telegram_api, bot.handle) as (_channel, post):
            assert await post(text_update(1, "are you a bot?")) == 200
            return await telegram_api.wait_for("sendMessage")

    sent = asyncio.run(scenario())
    assert len(sent) == 1
    assert sent[0]["chat_id"] == CHAT
    assert "bot" in sent[0]["text"] or "assistant" in sent[0]["text"]
    assert "reply_markup" not in sent[0]
    [message] = bot.messages
    assert (message.session_id, message.recipient_id, message.channel) == (f"telegram:{CHAT}", str(CHAT), "telegram")
    assert message.text == "are you a bot?"


def test_buttons_become_an_inline_keyboard(telegram_api):
    bot = Bot()

    async def scenario():
        async with serving(telegram_api, bot.handle) as (_channel, post):
            await post(text_update(1, "hello"))
            return await telegram_api.wait_for("sendMessage")

    [sent] = asyncio.run(scenario())
    keyboard = sent["reply_markup"]["inline_keyboard"]
    titles = [button["text"] for row in keyboard for button in row]
    assert titles[0] == "Track my order" and len(titles) >= 2
    assert all(button["callback_data"] == button["text"] for row in keyboard for button in row)  # payload = title
    assert all(len(row) == 1 for row in keyboard)


def test_a_button_press_is_answered_and_handled_as_its_payload(telegram_api):
    bot = Bot()

    async def scenario():
        async with serving(telegram_api, bot.handle) as (_channel, post):
            keyboard = [[{"text": "Track my order", "callback_data": "Track my order"}]]
            assert await post(callback_update(5, "Track my order", keyboard)) == 200
            await telegram_api.wait_for("sendMessage")

    asyncio.run(scenario())
    assert telegram_api.sent("answerCallbackQuery") == [{"callback_query_id": "cbq-5"}]
    [message] = bot.messages
    assert message.text == "Track my order" and message.session_id == f"telegram:{CHAT}"
    assert message.metadata["callback"] is True
    assert bot.understander.calls == ["Track my order"]
    [sent] = telegram_api.sent()
    assert sent["chat_id"] == CHAT and "order" in sent["text"].lower()


def test_a_payload_over_64_bytes_travels_as_a_remembered_hash(telegram_api):
    long_payload = "/choose_option{\"order_id\": \"48213\", \"reason\": \"" + "é" * 40 + "\"}"
    assert len(long_payload.encode()) > CALLBACK_DATA_LIMIT
    seen: list[str] = []

    async def on_message(message: Message, output) -> Reply:
        seen.append(message.text)
        if message.text == "menu":
            await output.send_buttons(message.recipient_id, "Pick one", [Button("Long one", long_payload), Button("Short", "short")])
        return Reply([], "silent")

    async def scenario():
        async with serving(telegram_api, on_message) as (channel, post):
            await post(text_update(1, "menu"))
            [sent] = await telegram_api.wait_for("sendMessage")
            keyboard = sent["reply_markup"]["inline_keyboard"]
            data = keyboard[0][0]["callback_data"]
            assert data.startswith(LONG_PAYLOAD_PREFIX) and len(data.encode()) <= CALLBACK_DATA_LIMIT
            assert keyboard[1][0]["callback_data"] == "short"
            await post(callback_update(2, data, keyboard))
            # another worker (or after a restart) does not know the hash: the pressed button's title is used
            other = TelegramChannel(channel.config, telegram_api.token, SECRET)
            assert other.output.payload_of(data, {"reply_markup": {"inline_keyboard": keyboard}}) == "Long one"
            assert other.output.payload_of("short") == "short"
            await other.stop()

    asyncio.run(scenario())
    assert seen == ["menu", long_payload]


# -- what is ignored, and what is handled once -------------------------------------------------------


def test_other_updates_are_acknowledged_and_ignored(telegram_api):
    bot = Bot()
    others = [
        {"update_id": 1, "edited_message": text_update(0, "edited")["message"]},
        {"update_id": 2, "message": {"message_id": 3, "date": 0, "chat": {"id": CHAT, "type": "private"},
                                     "sticker": {"file_id": "x", "file_unique_id": "y", "type": "regular",
                                                 "width": 512, "height": 512, "is_animated": False, "is_video": False}}},
        {"update_id": 3, "channel_post": text_update(0, "news")["message"]},
        {"update_id": 4, "callback_query": {"id": "game", "from": {"id": CHAT}, "chat_instance": "1", "game_short_name": "g"}},
        {"update_id": 5, "my_chat_member": {}},
    ]

    async def scenario():
        async with serving(telegram_api, bot.handle) as (_channel, post):
            assert [await post(update) for update in others] == [200] * len(others)
            assert await post(text_update(6, "are you a bot?")) == 200

    asyncio.run(scenario())
    assert [message.text for message in bot.messages] == ["are you a bot?"]
    assert len(telegram_api.sent()) == 1 and telegram_api.sent("answerCallbackQuery") == []


def test_a_redelivered_update_is_handled_once(telegram_api):
    bot = Bot()

    async def scenario():
        async with serving(telegram_api, bot.handle) as (_channel, post):
            update = text_update(77, "are you a bot?")
            statuses = await asyncio.gather(*(post(update) for _ in range(3)))
            assert list(statuses) == [200, 200, 200]
            assert await post(text_update(78, "thanks")) == 200
            assert await post(update) == 200

    asyncio.run(scenario())
    assert [message.text for message in bot.messages] == ["are you a bot?", "thanks"]
    assert len(telegram_api.sent()) == 2


def test_bad_bodies_are_refused(telegram_api):
    bot = Bot()

    async def scenario():
        async with serving(telegram_api, bot.handle) as (_channel, post):
            assert await post([1, 2]) == 400
            assert await post("not an update") == 400

    asyncio.run(scenario())
    assert bot.messages == []


# -- the Bot API failing -----------------------------------------------------------------------------


def test_replies_survive_server_errors_and_rate_limits_and_arrive_once(telegram_api):
    bot = Bot()
    telegram_api.fail_next(2, status=500)
    telegram_api.fail_next(1, status=429, retry_after=1)

    async def scenario():
        async with serving(telegram_api, bot.handle) as (_channel, post):
            loop = asyncio.get_running_loop()
            started = loop.time()
            assert await post(text_update(1, "are you a bot?")) == 200
            assert loop.time() - started < 0.9  # acknowledged before the reply is sent
            await telegram_api.wait_for("sendMessage")
            return loop.time() - started

    elapsed = asyncio.run(scenario())
    attempts = [params for method, params in telegram_api.calls if method == "sendMessage"]
    assert len(attempts) == 4 and [bool(a.get("_failed")) for a in attempts] == [True, True, True, False]
    assert len(telegram_api.sent()) == 1
    assert elapsed >= 1.0  # retry_after was honoured


def test_a_client_error_is_not_retried_and_the_channel_carries_on(telegram_api, caplog):
    bot = Bot()
    telegram_api.fail_next(1, status=400)

    async def scenario():
        async with serving(telegram_api, bot.handle) as (_channel, post):
            await post(text_update(1, "are you a bot?"))
            await post(text_update(2, "thanks"))

    with caplog.at_level("ERROR", logger="bot.channels.telegram"):
        asyncio.run(scenario())
    assert len([1 for method, _ in telegram_api.calls if method == "sendMessage"]) == 2
    assert len(telegram_api.sent()) == 1
    assert "HTTP 400" in caplog.text and telegram_api.token not in caplog.text


def test_updates_after_stop_are_refused_for_redelivery(telegram_api):
    bot = Bot()

    async def scenario():
        async with serving(telegram_api, bot.handle) as (channel, post):
            await channel.stop()
            assert await post(text_update(1, "hello")) == 503

    asyncio.run(scenario())
    assert bot.messages == []


# -- configuration and set-webhook -------------------------------------------------------------------


def test_from_config_reads_the_secrets_from_the_environment(monkeypatch):
    monkeypatch.setenv("TG_TOKEN", "1:abc")
    monkeypatch.delenv("TG_SECRET", raising=False)
    config = TelegramConfig(bot_token_env="TG_TOKEN", secret_token_env="TG_SECRET")
    with pytest.raises(ConfigError, match="TG_SECRET"):
        TelegramChannel.from_config(config)
    monkeypatch.setenv("TG_SECRET", SECRET)
    channel = TelegramChannel.from_config(config)
    assert channel.output_channel().name == "telegram"
    assert channel.api.base_url == "https://api.telegram.org"


def write_config(tmp_path: Path, telegram_api) -> Path:
    path = tmp_path / "bot.yml"
    path.write_text(json.dumps({"channels": {"telegram": {
        "api_base_url": telegram_api.base_url, "bot_token_env": "TG_TOKEN", "secret_token_env": "TG_SECRET",
        "backoff_seconds": 0.01}}}))
    return path


def test_set_webhook_registers_the_url_and_the_secret(telegram_api, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TG_TOKEN", telegram_api.token)
    monkeypatch.setenv("TG_SECRET", SECRET)
    telegram_api.fail_next(1, status=500)
    url = "https://bot.example.com/webhooks/telegram"
    assert main(["telegram", "set-webhook", "--url", url, "--config", str(write_config(tmp_path, telegram_api))]) == 0
    assert telegram_api.sent("setWebhook") == [{"url": url, "secret_token": SECRET}]
    assert url in capsys.readouterr().out


def test_set_webhook_fails_clearly(telegram_api, tmp_path, monkeypatch, capsys):
    config = str(write_config(tmp_path, telegram_api))
    monkeypatch.delenv("TG_TOKEN", raising=False)
    monkeypatch.setenv("TG_SECRET", SECRET)
    assert main(["telegram", "set-webhook", "--url", "https://x.example/webhooks/telegram", "--config", config]) == 2
    assert "TG_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("TG_TOKEN", "999:wrong-token")  # the stand-in answers 401, which is not retried
    assert main(["telegram", "set-webhook", "--url", "https://x.example/webhooks/telegram", "--config", config]) == 1
    err = capsys.readouterr().err
    assert "setWebhook: HTTP 401" in err and "wrong-token" not in err
    assert telegram_api.sent("setWebhook") == []
