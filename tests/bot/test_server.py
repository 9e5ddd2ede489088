"""The webhook server (``csbot serve``) over real sockets on loopback: the server's own routes, the JSON error
for every bad request (none reaching the dialogue manager), metrics, text cut to size, channels from the
config, a clean stop on SIGTERM with a turn in flight, and ``csbot serve`` refusing to start without models.

The bot is the demo domain with the keyword understander of test_dialogue (no NLU model) and the memory store;
coroutines run with ``asyncio.run`` inside plain test functions, as in the other bot tests.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from conftest import REPO
from test_dialogue import KeywordUnderstander

from bot.app import BotApp
from bot.channels.rest import RestChannel, RestConfig
from bot.channels.webhook import WebhookChannel
from bot.cli import main
from bot.config import ServerConfig
from bot.dialogue import DialogueManager
from bot.domain import load_domain
from bot.server import build_app, build_channels, run_server
from bot.sessions import MemorySessionStore
from csbot import __version__
from csbot.errors import ConfigError, StoreError
from csbot.home import HOME_ENV
from csbot.settings import load_config

DEMO_DOMAIN = REPO / "configs" / "demo" / "domain.yml"
WEBHOOK = "/webhooks/rest/webhook"


def demo_bot(understander: KeywordUnderstander | None = None) -> BotApp:
    """The demo shop answered by keyword rules, sessions in memory, no transcripts."""
    manager = DialogueManager(load_domain(DEMO_DOMAIN), understander or KeywordUnderstander(), MemorySessionStore())
    return BotApp.for_manager(manager)


def rest_app(bot: BotApp, **server: object) -> web.Application:
    return build_app(bot, [RestChannel(RestConfig())], ServerConfig(**server))


async def get_json(session: aiohttp.ClientSession, url: str) -> tuple[int, object]:
    async with session.get(url) as response:
        return response.status, await response.json()


# -- the server's own routes --------------------------------------------------------------------------------


def test_health_always_and_ready_only_while_the_bot_is_started(loopback_server):
    async def scenario():
        bot = demo_bot()
        async with loopback_server(rest_app(bot)) as url, aiohttp.ClientSession() as http:
            assert await get_json(http, f"{url}/health") == (200, {"status": "ok"})
            status, body = await get_json(http, f"{url}/ready")
            assert status == 503 and body["error"]["status"] == 503
            await bot.start()
            assert await get_json(http, f"{url}/ready") == (200, {"status": "ready"})
            await bot.stop()
            assert (await get_json(http, f"{url}/ready"))[0] == 503

    asyncio.run(scenario())


def test_version_reports_the_package_and_the_model_and_index_versions(loopback_server):
    async def scenario():
        bot = demo_bot()
        async with loopback_server(rest_app(bot)) as url, aiohttp.ClientSession() as http:
            status, body = await get_json(http, f"{url}/version")
        assert status == 200
        assert body["package"] == __version__ and body["model"] == "kw-test" and body["index"] == ""

    asyncio.run(scenario())


# -- bad requests: a JSON error with the right status, and the manager never sees them ------------------------

BAD_REQUESTS = [
    # (method, path, headers, body, status, field)
    ("GET", "/nowhere", {}, None, 404, None),
    ("GET", WEBHOOK, {}, None, 405, None),
    ("DELETE", "/health", {}, None, 405, None),
    ("POST", WEBHOOK, {"Content-Type": "text/plain"}, b'{"sender": "a", "message": "hi"}', 415, None),
    ("POST", WEBHOOK, {}, b"x" * 600, 413, None),
    ("POST", WEBHOOK, {}, b'{"sender": "a", "message": ', 400, None),
    ("POST", WEBHOOK, {}, b'["sender", "message"]', 400, None),
    ("POST", WEBHOOK, {}, b'{"message": "hi"}', 400, "sender"),
    ("POST", WEBHOOK, {}, b'{"sender": "a"}', 400, "message"),
    ("POST", WEBHOOK, {}, b'{"sender": "a", "message": 5}', 400, "message"),
    ("POST", WEBHOOK, {}, b'{"sender": 7, "message": "hi"}', 400, "sender"),
    ("POST", WEBHOOK, {}, b'{"sender": "a", "message": "hi", "metadata": [1]}', 400, "metadata"),
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "status", "field"), BAD_REQUESTS)
def test_a_bad_request_is_a_json_error_that_never_reaches_the_manager(loopback_server, method, path, headers, body,
                                                                     status, field):
    async def scenario():
        understander = KeywordUnderstander()
        bot = demo_bot(understander)
        await bot.start()
        warmed = list(understander.calls)
        sent_headers = {"Content-Type": "application/json", **headers}
        try:
            async with (loopback_server(rest_app(bot, max_body_bytes=500)) as url, aiohttp.ClientSession() as http,
                    http.request(method, f"{url}{path}", data=body, headers=sent_headers) as response):
                assert response.status == status
                assert response.content_type == "application/json"
                error = (await response.json())["error"]
                if status == 405:
                    assert "POST" in response.headers["Allow"] or "GET" in response.headers["Allow"]
        finally:
            await bot.stop()
        assert error["status"] == status and error["message"]
        assert error.get("field") == field
        assert understander.calls == warmed

    asyncio.run(scenario())


class BrokenChannel(WebhookChannel):
    """A channel whose route fails with a csbot error, as a store outage would."""

    name = "broken"

    def output_channel(self):
        from bot.channels.base import CollectingOutputChannel

        return CollectingOutputChannel()

    def routes(self, on_message):
        async def fail(request: web.Request) -> web.Response:
            raise StoreError("redis://10.0.0.9:6379 does not answer")

        async def crash(request: web.Request) -> web.Response:
            raise ZeroDivisionError("division by zero")

        return [web.get("/broken", fail), web.get("/crash", crash)]


@pytest.mark.parametrize("path", ["/broken", "/crash"])
def test_an_error_escaping_a_handler_is_a_500_without_traceback_and_is_logged(loopback_server, caplog, path):
    async def scenario():
        app = build_app(demo_bot(), [BrokenChannel(RestConfig())])
        async with (loopback_server(app) as url, aiohttp.ClientSession() as http,
                http.get(f"{url}{path}") as response):
            return response.status, await response.text()

    status, text = asyncio.run(scenario())
    assert status == 500
    assert '"status": 500' in text and "Traceback" not in text and "10.0.0.9" not in text and "division" not in text
    assert any(record.levelname == "ERROR" and path in record.getMessage() for record in caplog.records)


# -- metrics and text cut to size ----------------------------------------------------------------------------


def test_metrics_count_requests_turns_replies_and_handovers(loopback_server):
    async def scenario():
        bot = demo_bot()
        await bot.start()
        try:
            async with loopback_server(rest_app(bot)) as url, aiohttp.ClientSession() as http:
                for text in ("hello", "I want to talk to a person"):
                    async with http.post(f"{url}{WEBHOOK}", json={"sender": "ann", "message": text}) as response:
                        assert response.status == 200
                async with http.get(f"{url}/nowhere") as response:
                    assert response.status == 404
                async with http.get(f"{url}/metrics") as response:
                    assert response.status == 200 and response.content_type == "text/plain"
                    return await response.text()
        finally:
            await bot.stop()

    text = asyncio.run(scenario())
    lines = set(text.splitlines())
    assert 'csbot_http_requests_total{channel="rest",status="200"} 2.0' in lines
    assert 'csbot_http_requests_total{channel="server",status="404"} 1.0' in lines
    assert 'csbot_turn_seconds_count{channel="rest"} 2.0' in lines
    assert 'csbot_replies_total{channel="rest",source="handoff"} 1.0' in lines
    assert 'csbot_handoffs_total{channel="rest"} 1.0' in lines
    parts = {line.split('"')[1]: float(line.rsplit(" ", 1)[1]) for line in lines
             if line.startswith("csbot_turn_part_seconds_total{")}
    turn_sum = next(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith('csbot_turn_seconds_sum{channel="rest"}'))
    assert set(parts) == {"nlu", "store"}  # nothing was searched
    assert all(seconds > 0 for seconds in parts.values()) and sum(parts.values()) <= turn_sum


def test_metrics_live_in_the_servers_own_registry():
    from prometheus_client import REGISTRY

    first, second = rest_app(demo_bot()), rest_app(demo_bot())  # a second app registers its metrics again
    assert first is not second
    assert REGISTRY.get_sample_value("csbot_http_requests_total", {"channel": "rest", "status": "200"}) is None


def test_text_longer_than_the_limit_is_cut_before_the_manager(loopback_server):
    async def scenario():
        understander = KeywordUnderstander()
        bot = demo_bot(understander)
        await bot.start()
        try:
            async with (loopback_server(rest_app(bot, max_text_chars=12)) as url, aiohttp.ClientSession() as http,
                    http.post(f"{url}{WEBHOOK}", json={"sender": "ann", "message": "hello " + "x" * 5000}) as resp):
                assert resp.status == 200
        finally:
            await bot.stop()
        return understander.calls[-1]

    assert asyncio.run(scenario()) == "hello xxxxxx"


# -- channels from the config --------------------------------------------------------------------------------


def test_the_channels_section_is_read_validated_and_built(tmp_path, monkeypatch):
    path = tmp_path / "bot.yml"
    path.write_text("server: {port: 8080, max_text_chars: 100}\n"
                    "channels:\n  rest: {token_env: SHOP_TOKEN, cors_origins: ['https://shop.example']}\n")
    monkeypatch.setenv("SHOP_TOKEN", "s3cret")
    config = load_config(path)
    assert (config.server.host, config.server.port, config.server.max_text_chars) == ("127.0.0.1", 8080, 100)
    [channel] = build_channels(config.channels)
    assert isinstance(channel, RestChannel) and channel.token == "s3cret"
    assert channel.config.cors_origins == ["https://shop.example"]
    assert build_channels({"rest": None}) and build_channels({"rest": {"enabled": False}}) == []


@pytest.mark.parametrize(("channels", "expected"), [
    ({"repl": {}}, "channels.repl: the repl channel is not a webhook channel"),
    ({"fax": {}}, "channels: unknown 'fax'"),
    ({"rest": {"cors_origins": 5}}, "channels.rest.cors_origins:"),
    ({"rest": {"tokn_env": "X"}}, "channels.rest.tokn_env:"),
    ({"rest": {"token_env": "CSBOT_TEST_UNSET_TOKEN"}}, "CSBOT_TEST_UNSET_TOKEN is not set"),
])
def test_a_bad_channels_entry_is_a_config_error_naming_it(channels, expected, monkeypatch):
    monkeypatch.delenv("CSBOT_TEST_UNSET_TOKEN", raising=False)
    with pytest.raises(ConfigError) as caught:
        build_channels(channels)
    assert expected in str(caught.value)


def test_bad_server_settings_are_refused_with_the_key(tmp_path):
    path = tmp_path / "bot.yml"
    path.write_text("server: {port: 70000}\n")
    with pytest.raises(ConfigError, match=r"server\.port"):
        load_config(path)


# -- serving until SIGTERM ------------------------------------------------------------------------------------


class SlowUnderstander(KeywordUnderstander):
    """Keyword rules that take a while, so a turn is still in flight when the stop arrives."""

    async def parse(self, text):
        if text != "hello":
            await asyncio.sleep(0.5)
        return await super().parse(text)


def test_sigterm_stops_cleanly_after_the_turn_in_flight(monkeypatch):
    async def scenario():
        bot = demo_bot(SlowUnderstander())
        listening: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        server = asyncio.create_task(run_server(bot, [RestChannel(RestConfig())], ServerConfig(port=0),
                                                on_listening=listening.set_result, shutdown_timeout=5))
        [url] = await asyncio.wait_for(listening, 30)
        async with aiohttp.ClientSession() as http:
            assert (await get_json(http, f"{url}/ready"))[0] == 200
            turn = asyncio.create_task(http.post(f"{url}{WEBHOOK}", json={"sender": "ann", "message": "thanks a lot"}))
            await asyncio.sleep(0.2)  # the turn is in the understander now
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None)  # handled: safe to send
            os.kill(os.getpid(), signal.SIGTERM)
            response = await turn
            assert response.status == 200 and (await response.json())[0]["recipient_id"] == "ann"
            response.release()
            await asyncio.wait_for(server, 10)
            with pytest.raises(aiohttp.ClientConnectionError):
                await http.get(f"{url}/health")
        assert not bot._started  # the bot was stopped too

    asyncio.run(scenario())


# -- `csbot serve` refuses to start without models --------------------------------------------------------------


def test_serve_refuses_to_start_without_a_model_and_names_what_to_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    assert main(["serve", "--port", "0"]) == 4
    err = capsys.readouterr().err
    assert "no NLU model" in err and "csbot prepare" in err and "csbot train" in err and str(tmp_path) in err


def test_serve_refuses_to_start_without_an_index_and_names_what_to_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    model = Path(tmp_path) / "models" / "demo"
    model.mkdir(parents=True)
    (model / "csbot-model.json").write_text("{}")
    assert main(["serve"]) == 4
    err = capsys.readouterr().err
    assert "no Q&A index" in err and "csbot index build" in err


def test_serve_refuses_several_workers_with_the_memory_store(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    assert main(["serve", "--workers", "2"]) == 2
    assert "cannot share the memory session store" in capsys.readouterr().err


@pytest.mark.parametrize(("choice", "expected"), [("auto", "uvloop"), ("uvloop", "uvloop"), ("asyncio", "asyncio")])
def test_the_server_runs_on_the_event_loop_the_config_names(choice, expected):
    from bot.server.run import run_loop

    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__.split(".")[0]

    assert run_loop(which(), choice) == expected


def test_uvloop_asked_for_but_missing_is_a_config_error_and_auto_falls_back(monkeypatch):
    import sys

    from bot.server.run import run_loop

    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError

    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__.split(".")[0]

    with pytest.raises(ConfigError, match=r"server\.event_loop: uvloop is not installed"):
        run_loop(which(), "uvloop")
    assert run_loop(which(), "auto") == "asyncio"
