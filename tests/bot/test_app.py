"""The application builder: wiring from the config, conflicts refused at build, a lifecycle that releases what it
opened and drains what is in flight, and messages sent to a conversation later through its channel.

Coroutines run with ``asyncio.run`` inside plain test functions, as in the other bot tests.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import REPO
from test_dialogue import KeywordUnderstander

from bot.app import BotApp
from bot.channels.base import CollectingOutputChannel
from bot.dialogue import DialogueManager
from bot.domain import load_domain
from bot.messages import Message, OutgoingMessage
from bot.sessions import MemorySessionStore
from bot.transcripts.base import TranscriptSink
from bot.understanding import ModelUnderstander
from csbot.errors import ConfigError, StoreUnavailableError
from csbot.settings import load_config
from nlu.artefact import read_info

DEMO_DOMAIN = REPO / "configs" / "demo" / "domain.yml"


class RecordingStore(MemorySessionStore):
    """The memory store, remembering whether it was started and closed."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    async def start(self) -> None:
        self.events.append("start")
        await super().start()

    async def close(self) -> None:
        self.events.append("close")
        await super().close()


class UnreachableSink(TranscriptSink):
    """A transcript destination that does not answer its ping, and records being closed."""

    def __init__(self) -> None:
        self.closed = False

    async def append(self, turn) -> None:  # pragma: no cover - never reached: start fails first
        raise AssertionError("append after a failed start")

    async def ping(self) -> None:
        raise StoreUnavailableError("redis://127.0.0.1:1/0 does not answer")

    async def close(self) -> None:
        self.closed = True


def make_app(store=None, transcripts=None) -> BotApp:
    manager = DialogueManager(load_domain(DEMO_DOMAIN), KeywordUnderstander(), store or MemorySessionStore(), None,
                              transcripts)
    return BotApp.for_manager(manager)


def test_several_workers_with_the_memory_store_are_refused_at_build(tmp_path):
    config = load_config(None, {"server.workers": 3, "sessions.store": "memory", "bot.model_dir": str(tmp_path / "none")})
    with pytest.raises(ConfigError, match=r"server.workers: 3 workers .* sessions.store: redis"):
        BotApp.build(config)  # refused before the (missing) model is even looked for


def test_an_unknown_store_is_a_config_error_naming_the_setting(tiny_model_dir, tmp_path):
    domain = tmp_path / "domain.yml"
    domain.write_text("intents:\n  greet: {chitchat: true}\ntemplates:\n  greet: [{text: Hello!}]\n")
    config = load_config(None, {"bot.domain": str(domain), "bot.model_dir": str(tiny_model_dir),
                                "bot.index_dir": str(tmp_path / "no-index"), "sessions.store": "mongo"})
    with pytest.raises(ConfigError, match=r"sessions.store: unknown 'mongo'; known: memory, redis"):
        BotApp.build(config, transcripts=False)


def test_build_wires_the_configured_parts_and_answers_through_a_channel(tiny_model_dir, tmp_path):
    async def main() -> None:
        domain = tmp_path / "domain.yml"
        domain.write_text("intents:\n  greet: {chitchat: true, threshold: 0}\ntemplates:\n  greet: [{text: Hello!}]\n")
        log = tmp_path / "t.jsonl"
        config = load_config(None, {"bot.domain": str(domain), "bot.model_dir": str(tiny_model_dir),
                                    "bot.index_dir": str(tmp_path / "no-index"), "transcripts.path": str(log)})
        app = BotApp.build(config)
        assert isinstance(app.store, MemorySessionStore) and isinstance(app.nlu, ModelUnderstander)
        assert app.manager.store is app.store and app.retriever is None
        output = CollectingOutputChannel()
        async with app:
            reply = await app.handle(Message("s1", "hello there", "test"), output)
        assert [m.text for m in output.messages] == [m.text for m in reply.messages] and reply.messages
        assert {m.recipient_id for m in output.messages} == {"s1"}
        assert log.read_text().count("\n") == 1  # stop() wrote the queued transcript turn
        info = read_info(tiny_model_dir)[1]
        assert app.versions().model == info.version and app.versions().model_created == info.created_iso
        assert reply.details.versions == app.versions()
        record = json.loads(log.read_text())
        logged = record["versions"]  # every transcript turn names the model it came from
        assert (logged["nlu"], logged["nlu_created"], logged["index"]) == (info.version, info.created_iso, "")
        # and the scores the turn was decided on: the intent's confidence, the threshold it needed (greet's own 0,
        # else the default 0.5), the out-of-scope score (None: this untrained model has no neighbour detector)
        parse = record["parse"]
        assert parse["threshold"] == (0 if parse["intent"]["name"] == "greet" else 0.5)
        assert "oos_score" in parse and parse["oos_score"] is None
        assert parse["intent"]["confidence"] == pytest.approx(reply.details.confidence, abs=1e-4)

    asyncio.run(main())


def test_a_failed_start_releases_what_it_opened():
    async def main() -> None:
        store = RecordingStore()
        sink = UnreachableSink()
        app = make_app(store=store, transcripts=sink)
        with pytest.raises(StoreUnavailableError, match="does not answer"):
            await app.start()
        assert store.events == ["start", "close"]  # the store it had connected is closed again
        assert sink.closed

    asyncio.run(main())


def test_stop_drains_the_model_calls_in_flight(tiny_model_dir):
    async def main() -> None:
        from nlu.inference import NLUModel

        nlu = ModelUnderstander(NLUModel.load(tiny_model_dir), max_batch=64, max_wait_ms=50)
        app = make_app()
        app.nlu = app.manager.nlu = nlu
        parses = [asyncio.ensure_future(nlu.parse(f"track order {i}")) for i in range(5)]
        await asyncio.sleep(0)  # submitted, waiting for the batch window
        await app.stop()
        assert all(p.done() and not p.cancelled() and p.exception() is None for p in parses)
        assert nlu._batcher.in_flight == 0

    asyncio.run(main())


def test_a_message_can_be_sent_to_a_conversation_later_through_its_channel():
    async def main() -> None:
        app = make_app()
        web, other = CollectingOutputChannel(), CollectingOutputChannel()
        app.register_output(other, "other")
        async with app:
            await app.handle(Message("s-web", "hello", "web", recipient_id="visitor-7"), web)
            await app.handle(Message("s-other", "hello", "other"), other)
            web.take()
            assert await app.send_to("s-web", [OutgoingMessage("An agent will answer shortly.")])
            assert not await app.send_to("nobody", [OutgoingMessage("lost")])
        assert [(m.recipient_id, m.text) for m in web.messages] == [("visitor-7", "An agent will answer shortly.")]
        assert all(m.text != "An agent will answer shortly." for m in other.messages)

    asyncio.run(main())
