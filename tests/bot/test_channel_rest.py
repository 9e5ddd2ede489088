"""The REST channel over real sockets: Rasa's contract (text, buttons, a button's payload as the click), the
conversation id and recipient, the bearer token, and CORS for browser widgets.

The bot is the demo domain with the keyword understander (see test_server.py); coroutines run with
``asyncio.run`` inside plain test functions.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from test_server import WEBHOOK, demo_bot

from bot.channels.rest import RestChannel, RestConfig
from bot.config import ServerConfig
from bot.messages import OutgoingMessage
from bot.server import build_app
from csbot.errors import UnreachableError

SHOP = "https://shop.example"


def serve_rest(loopback_server, bot, config: RestConfig | None = None, token: str | None = None):
    return loopback_server(build_app(bot, [RestChannel(config or RestConfig(), token)], ServerConfig()))


def test_a_conversation_with_text_buttons_and_a_click(loopback_server):
    async def scenario():
        bot = demo_bot()
        await bot.start()
        try:
            async with serve_rest(loopback_server, bot) as url, aiohttp.ClientSession() as http:
                async with http.get(f"{url}/webhooks/rest/") as response:
                    status = (response.status, await response.json())
                async with http.post(f"{url}{WEBHOOK}", json={"sender": "ann", "message": "hello",
                                                              "metadata": {"page": "/cart"}}) as response:
                    assert response.status == 200
                    greeting = await response.json()
                click = greeting[0]["buttons"][0]["payload"]
                async with http.post(f"{url}{WEBHOOK}", json={"sender": "ann", "message": click}) as response:
                    answer = await response.json()
            state = await bot.store.load("rest:ann")
            try:  # REST has no push: a message outside a request is refused, never reported as sent
                sent_later = await bot.send_to("rest:ann", [OutgoingMessage("an agent joins")])
            except UnreachableError as exc:
                sent_later = exc
        finally:
            await bot.stop()
        return status, greeting, click, answer, state, sent_later

    status, greeting, click, answer, state, sent_later = asyncio.run(scenario())
    assert status == (200, {"status": "ok"})
    assert len(greeting) == 1 and greeting[0]["recipient_id"] == "ann" and greeting[0]["text"]
    assert all(set(button) == {"title", "payload"} for button in greeting[0]["buttons"])
    assert click == "Track my order"
    assert [set(bubble) for bubble in answer] == [{"recipient_id", "text"}]
    assert "order" in answer[0]["text"].lower()  # asked for the order number: the click was understood
    assert state is not None and state.channel == "rest" and state.recipient_id == "ann"
    assert isinstance(sent_later, UnreachableError) and "REST has no push" in str(sent_later)


@pytest.mark.parametrize(("authorization", "status"), [
    (None, 401),
    ("Bearer wrong", 401),
    ("Basic s3cret", 401),
    ("Bearer s3cret", 200),
])
def test_the_bearer_token_is_required_when_configured(loopback_server, authorization, status):
    async def scenario():
        bot = demo_bot()
        await bot.start()
        headers = {"Authorization": authorization} if authorization else {}
        try:
            async with (serve_rest(loopback_server, bot, token="s3cret") as url, aiohttp.ClientSession() as http,
                    http.post(f"{url}{WEBHOOK}", json={"sender": "ann", "message": "hello"}, headers=headers) as response):
                return response.status, await response.json(), response.headers.get("WWW-Authenticate")
        finally:
            await bot.stop()

    got, body, challenge = asyncio.run(scenario())
    assert got == status
    if status == 401:
        assert body["error"]["status"] == 401 and challenge == "Bearer"
    else:
        assert body[0]["recipient_id"] == "ann"


def test_the_token_comes_from_the_environment_variable_the_config_names(monkeypatch):
    monkeypatch.setenv("CSBOT_REST_TOKEN", "from-env")
    channel = RestChannel.from_config(RestConfig(token_env="CSBOT_REST_TOKEN"))
    assert channel.token == "from-env"
    assert RestChannel.from_config(RestConfig()).token is None


def test_cors_allows_listed_origins_only(loopback_server):
    async def scenario():
        bot = demo_bot()
        await bot.start()
        seen = {}
        config = RestConfig(cors_origins=[SHOP])
        try:
            async with serve_rest(loopback_server, bot, config, token="t") as url, aiohttp.ClientSession() as http:
                for origin in (SHOP, "https://evil.example"):
                    async with http.post(f"{url}{WEBHOOK}", json={"sender": "ann", "message": "hello"},
                                         headers={"Origin": origin, "Authorization": "Bearer t"}) as response:
                        seen[origin] = (response.status, response.headers.get("Access-Control-Allow-Origin"))
                    async with http.options(f"{url}{WEBHOOK}", headers={
                            "Origin": origin, "Access-Control-Request-Method": "POST",
                            "Access-Control-Request-Headers": "content-type, authorization"}) as response:
                        seen[f"preflight {origin}"] = (response.status, dict(response.headers))
                async with http.post(f"{url}{WEBHOOK}", json={"sender": "ann", "message": "hello"},
                                     headers={"Origin": SHOP}) as response:  # no token: the error is readable too
                    seen["401"] = (response.status, response.headers.get("Access-Control-Allow-Origin"))
        finally:
            await bot.stop()
        return seen

    seen = asyncio.run(scenario())
    assert seen[SHOP] == (200, SHOP)
    assert seen["https://evil.example"] == (200, None)
    status, headers = seen[f"preflight {SHOP}"]
    assert status == 204 and headers["Access-Control-Allow-Origin"] == SHOP
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "authorization" in headers["Access-Control-Allow-Headers"].lower()
    status, headers = seen["preflight https://evil.example"]
    assert status == 403 and "Access-Control-Allow-Origin" not in headers
    assert seen["401"] == (401, SHOP)


def test_without_cors_origins_no_origin_is_allowed(loopback_server):
    async def scenario():
        bot = demo_bot()
        await bot.start()
        try:
            async with (serve_rest(loopback_server, bot) as url, aiohttp.ClientSession() as http,
                    http.get(f"{url}/webhooks/rest/", headers={"Origin": SHOP}) as response):
                return response.status, response.headers.get("Access-Control-Allow-Origin")
        finally:
            await bot.stop()

    assert asyncio.run(scenario()) == (200, None)


def rich_domain(tmp_path):
    """The demo domain whose goodbye is an image with custom data, and another template with only an attachment."""
    import yaml
    from conftest import REPO

    data = yaml.safe_load((REPO / "configs" / "demo" / "domain.yml").read_text(encoding="utf-8"))
    data["templates"]["goodbye"] = [{"text": "Bye {order_id}!", "image": "https://cdn.example/bye-{order_id}.png",
                                     "custom": {"card": "rating", "stars": 5}}]
    data["templates"]["thanks"] = [{"attachment": "https://cdn.example/receipt.pdf"}]
    path = tmp_path / "domain.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_images_attachments_and_custom_data_reach_rest_as_rasa_sends_them(loopback_server, tmp_path):
    from test_dialogue import KeywordUnderstander

    from bot.app import BotApp
    from bot.dialogue import DialogueManager
    from bot.domain import load_domain
    from bot.sessions import MemorySessionStore

    async def scenario():
        manager = DialogueManager(load_domain(rich_domain(tmp_path)), KeywordUnderstander(), MemorySessionStore())
        bot = BotApp.for_manager(manager)
        await bot.start()
        try:
            async with serve_rest(loopback_server, bot) as url, aiohttp.ClientSession() as http:
                async with http.post(f"{url}{WEBHOOK}", json={"sender": "ann", "message": "bye"}) as response:
                    bye = await response.json()
                async with http.post(f"{url}{WEBHOOK}", json={"sender": "bob", "message": "thanks"}) as response:
                    thanks = await response.json()
        finally:
            await bot.stop()
        return bye, thanks

    bye, thanks = asyncio.run(scenario())
    assert len(bye) == 1 and bye[0]["text"].startswith("Bye ")
    assert bye[0]["image"].startswith("https://cdn.example/bye-") and bye[0]["custom"] == {"card": "rating", "stars": 5}
    assert thanks == [{"recipient_id": "bob", "attachment": "https://cdn.example/receipt.pdf"}]


def test_a_channel_without_images_sends_their_links_after_the_text():
    from bot.channels.base import OutputChannel

    class TextOnly(OutputChannel):
        def __init__(self):
            self.sent = []

        async def send_text(self, recipient_id, text):
            self.sent.append(text)

    async def scenario():
        output = TextOnly()
        await output.send_message("ann", OutgoingMessage("Bye!", image="https://cdn.example/a.png", custom={"x": 1}))
        await output.send_message("ann", OutgoingMessage("", attachment={"type": "file", "id": 7}))
        await output.send_message("ann", OutgoingMessage("", attachment="https://cdn.example/r.pdf"))
        return output.sent

    assert asyncio.run(scenario()) == ["Bye!\nhttps://cdn.example/a.png", "https://cdn.example/r.pdf"]


def test_a_template_variant_that_says_nothing_is_refused(tmp_path):
    import yaml
    from conftest import REPO

    from bot.domain import load_domain
    from csbot.errors import CsbotError

    data = yaml.safe_load((REPO / "configs" / "demo" / "domain.yml").read_text(encoding="utf-8"))
    data["templates"]["thanks"] = [{"text": ""}]
    path = tmp_path / "domain.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(CsbotError, match="needs text, buttons, an image"):
        load_domain(path)


def test_an_unknown_placeholder_in_an_image_url_is_a_warning_and_sent_as_written(tmp_path, caplog):
    import logging

    import yaml
    from conftest import REPO

    from bot.domain import load_domain
    from bot.render import Renderer
    from bot.sessions.state import SessionState

    data = yaml.safe_load((REPO / "configs" / "demo" / "domain.yml").read_text(encoding="utf-8"))
    data["templates"]["thanks"] = [{"text": "ok", "image": "https://cdn.example/{nope}.png"}]
    path = tmp_path / "domain.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="bot.domain.loader"):
        domain = load_domain(path)
    assert "templates.thanks[0].image" in caplog.text and "{nope}" in caplog.text and "{{nope}}" in caplog.text
    assert Renderer(domain).render("thanks", SessionState("s")).image == "https://cdn.example/{nope}.png"
