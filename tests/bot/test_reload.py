"""A running bot switching to newly promoted versions (bot/reload.py, the admin API), against a real directory
registry, real models (tiny, untrained), real HTTP on loopback and a real Redis for the announcements.

Each test builds two tiny model versions with different weights, registers and promotes the first, builds the
bot from a config naming the registry, then promotes the second (or a broken one) while turns keep coming.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import aiohttp
import pytest

from bot.app import BotApp
from bot.messages import Message
from bot.reload import announce
from bot.server.app import build_app
from bot.server.metrics import ServerMetrics
from csbot.registry import DirectoryRegistry
from csbot.settings import load_config
from nlu.artefact import read_info, save_bundle

TOKEN = "admin-secret-token"
DOMAIN = ("intents:\n  greet: {chitchat: true, threshold: 0}\n  track_order: {threshold: 0}\n"
          "  cancel_order: {threshold: 0}\n"
          "templates:\n  greet: [{text: Hello!}]\n  track_order: [{text: Tracking.}]\n"
          "  cancel_order: [{text: Cancelled.}]\n")


@pytest.fixture()
def versions(tmp_path, tiny_bundle_factory, tiny_labels) -> tuple[Path, Path]:
    """Two saved tiny models with different weights (and so different versions)."""
    first = save_bundle(tiny_bundle_factory(tiny_labels, seed=1), tmp_path / "v1")
    second = save_bundle(tiny_bundle_factory(tiny_labels, seed=2), tmp_path / "v2")
    return first, second


def version_of(model_dir: Path) -> str:
    return read_info(model_dir)[1].version


def make_config(tmp_path: Path, registry: Path, **overrides):
    domain = tmp_path / "domain.yml"
    domain.write_text(DOMAIN)
    settings = {"bot.domain": str(domain), "bot.model_dir": str(tmp_path / "unused-model"),
                "bot.index_dir": str(tmp_path / "no-index"), "transcripts.path": str(tmp_path / "t.jsonl"),
                "registry.path": str(registry), "registry.watch_seconds": 0, **overrides}
    return load_config(None, settings)


def test_the_bot_answers_with_the_promoted_version_and_switches_between_turns(tmp_path, versions):
    first, second = versions
    registry = DirectoryRegistry(tmp_path / "registry")
    registry.register("model", first)
    registry.promote("model", version_of(first), by="test")

    async def main() -> None:
        app = BotApp.build(make_config(tmp_path, registry.root), transcripts=True)
        assert app.switcher is not None and app.versions().model == version_of(first)
        async with app:
            before = await app.manager.handle(Message("s1", "hello there", "test"))
            assert await app.switcher.check() is False  # nothing changed in the registry
            registry.register("model", second)
            registry.promote("model", version_of(second), by="test")
            assert await app.switcher.check() is True
            after = await app.manager.handle(Message("s1", "hello there", "test"))
            status = app.switcher.status
            assert (status.model, status.switches, status.failures) == (version_of(second), 1, 0)
            registry.rollback("model", by="test")
            assert await app.switcher.check() is True
            back = await app.manager.handle(Message("s1", "hello there", "test"))
        assert before.details.versions.model == version_of(first)
        assert after.details.versions.model == version_of(second)
        assert back.details.versions.model == version_of(first)
        # the same text, parsed by different weights: the confidences differ
        assert before.details.confidence != after.details.confidence
        assert back.details.confidence == before.details.confidence
        logged = [json.loads(line)["versions"]["nlu"] for line in (tmp_path / "t.jsonl").read_text().splitlines()]
        assert logged == [version_of(first), version_of(second), version_of(first)]

    asyncio.run(main())


def test_turns_under_way_finish_with_the_version_they_started_with(tmp_path, versions):
    first, second = versions
    registry = DirectoryRegistry(tmp_path / "registry")
    for model in versions:
        registry.register("model", model)
    registry.promote("model", version_of(first), by="test")

    async def main() -> None:
        app = BotApp.build(make_config(tmp_path, registry.root, **{"server.batch_window_ms": 20}), transcripts=False)
        async with app:
            parses: dict[str, float] = {}
            for model in versions:  # each version's own confidence for the text, measured alone
                app_version = version_of(model)
                registry.promote("model", app_version, by="test")
                await app.switcher.check()
                parses[app_version] = (await app.manager.handle(Message("probe", "track my order", "t"))).details.confidence
            registry.promote("model", version_of(first), by="test")
            await app.switcher.check()
            turns = [asyncio.ensure_future(app.manager.handle(Message(f"s{i}", "track my order", "t")))
                     for i in range(40)]
            await asyncio.sleep(0)  # the first turns have taken the old pair
            registry.promote("model", version_of(second), by="test")
            assert await app.switcher.check() is True
            turns += [asyncio.ensure_future(app.manager.handle(Message(f"t{i}", "track my order", "t")))
                      for i in range(40)]
            replies = await asyncio.gather(*turns)
        seen = {r.details.versions.model for r in replies}
        assert seen == {version_of(first), version_of(second)}
        for reply in replies:  # parsed by the version recorded, never half by one and half by the other
            assert reply.source != "error"
            assert reply.details.confidence == pytest.approx(parses[reply.details.versions.model], abs=1e-4)

    asyncio.run(main())


def test_a_promoted_version_that_fails_to_load_is_reported_and_the_old_one_keeps_serving(tmp_path, versions):
    first, second = versions
    registry = DirectoryRegistry(tmp_path / "registry")
    registry.register("model", first)
    registry.promote("model", version_of(first), by="test")

    async def main() -> None:
        app = BotApp.build(make_config(tmp_path, registry.root), transcripts=False)
        async with app:
            entry = registry.register("model", second)
            registry.promote("model", entry.version, by="test")
            (entry.path / "model.safetensors").write_bytes(b"corrupted after promotion")
            assert await app.switcher.check() is False
            status = app.switcher.status
            assert status.failures == 1 and "checksum" in (status.last_error or "")
            reply = await app.manager.handle(Message("s1", "hello there", "test"))
            assert reply.details.versions.model == version_of(first) and reply.source != "error"
            assert await app.switcher.check() is False and status.failures == 1  # not retried until it changes

    asyncio.run(main())


def test_the_admin_endpoint_switches_and_version_and_metrics_show_it(tmp_path, versions, loopback_server, monkeypatch):
    first, second = versions
    registry = DirectoryRegistry(tmp_path / "registry")
    registry.register("model", first)
    registry.promote("model", version_of(first), by="test")
    monkeypatch.setenv("CSBOT_ADMIN_TOKEN", TOKEN)

    async def main() -> None:
        config = make_config(tmp_path, registry.root)
        bot = BotApp.build(config, transcripts=False)
        await bot.start()
        try:
            async with loopback_server(build_app(bot, [], config.server)) as base, aiohttp.ClientSession() as http:
                auth = {"Authorization": f"Bearer {TOKEN}"}
                async with http.post(f"{base}/admin/reload") as refused:
                    assert refused.status == 401
                registry.register("model", second)
                registry.promote("model", version_of(second), by="test")
                async with http.post(f"{base}/admin/reload", headers=auth) as response:
                    body = await response.json()
                    assert response.status == 200 and body["switched"] is True
                    assert body["model"] == version_of(second)
                async with http.get(f"{base}/version") as response:
                    shown = await response.json()
                    assert shown["model"] == version_of(second) and shown["reload"]["switches"] == 1
                async with http.get(f"{base}/metrics") as response:
                    text = await response.text()
                assert f'csbot_model_version{{kind="model",version="{version_of(second)}"}} 1.0' in text
                assert f'csbot_model_version{{kind="model",version="{version_of(first)}"}} 0.0' in text
                assert 'csbot_model_reloads_total{outcome="switched"} 1.0' in text
                broken = registry.register("model", shutil.copytree(first, tmp_path / "v1-copy"))  # same version
                assert broken.version == version_of(first)
                registry.promote("model", version_of(first), by="test")
                (registry.get("model", version_of(first)).path / "labels.json").write_text("{}")
                async with http.post(f"{base}/admin/reload", headers=auth) as response:
                    failed = await response.json()
                    assert response.status == 500 and "keeps serving" in failed["error"]["message"]
                async with http.get(f"{base}/version") as response:
                    assert (await response.json())["model"] == version_of(second)
        finally:
            await bot.stop()

    asyncio.run(main())


def test_every_bot_sharing_the_redis_switches_when_it_is_announced(tmp_path, versions, redis_url):
    first, second = versions
    registry = DirectoryRegistry(tmp_path / "registry")
    registry.register("model", first)
    registry.promote("model", version_of(first), by="test")

    async def main() -> None:
        config = make_config(tmp_path, registry.root, **{"sessions.store": "redis", "sessions.url": redis_url,
                                                         "sessions.namespace": f"reload{tmp_path.name[-6:]}"})
        bots = [BotApp.build(config, transcripts=False) for _ in range(2)]
        for bot in bots:
            await bot.start()
        try:
            await asyncio.sleep(0.2)  # both have subscribed
            registry.register("model", second)
            registry.promote("model", version_of(second), by="test")  # polling is off: only the announcement
            assert await announce(config) is True
            for _ in range(100):
                if all(bot.versions().model == version_of(second) for bot in bots):
                    break
                await asyncio.sleep(0.05)
            assert [bot.versions().model for bot in bots] == [version_of(second)] * 2
        finally:
            for bot in bots:
                await bot.stop()

    asyncio.run(main())


def test_without_a_registry_the_server_metrics_still_name_the_versions():
    from bot.turns import Versions

    metrics = ServerMetrics()
    metrics.versions(Versions("m1", "i1", "", ""))
    metrics.versions(Versions("m2", "i1", "", ""))
    text = metrics.render().decode()
    assert 'csbot_model_version{kind="model",version="m2"} 1.0' in text
    assert 'csbot_model_version{kind="model",version="m1"} 0.0' in text
    assert 'csbot_model_version{kind="index",version="i1"} 1.0' in text
