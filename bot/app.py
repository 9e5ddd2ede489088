"""Building a running bot from the config: session store, transcript sinks, NLU, retriever, dialogue manager.

:meth:`BotApp.build` is the one place that wires the parts from a :class:`csbot.settings.Config` and
rejects conflicting options when it builds. The lifecycle is explicit: ``await app.start()`` (or
``async with app``) connects and warms the models, and releases what it opened if a step fails;
``await app.stop()`` drains the batched model calls and the transcript queue, then closes the store.

Channels hand messages to :meth:`BotApp.handle` (the :data:`~bot.channels.base.OnMessage` callback) and
register their output side, so :meth:`BotApp.send_to` can reach a conversation later (hand-over, agents).
Models must exist: ``training.prepare.prepare_models`` makes them, called by the CLI before building.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from bot.channels.base import OutputChannel
from bot.dialogue import DialogueManager
from bot.domain import Domain, check_against_model, load_domain
from bot.messages import Message, OutgoingMessage, Reply
from bot.sessions.base import SessionStore
from bot.transcripts.base import TranscriptSink
from bot.turns import Versions
from bot.understanding import Retriever, Understander
from csbot.errors import ConfigError

if TYPE_CHECKING:
    from csbot.settings import Config

log = logging.getLogger(__name__)


class BotApp:
    """A dialogue manager with its store, models and transcript sinks; start it before use, stop it after."""

    def __init__(self, config: Config | None, domain: Domain, manager: DialogueManager, store: SessionStore,
                 nlu: Understander, retriever: Retriever | None, transcripts: TranscriptSink | None) -> None:
        self.config, self.domain, self.manager = config, domain, manager
        self.store, self.nlu, self.retriever, self.transcripts = store, nlu, retriever, transcripts
        self.outputs: dict[str, OutputChannel] = {}
        self._started = False

    @classmethod
    def build(cls, config: Config, *, transcripts: bool = True) -> BotApp:
        """Wire every part from ``config``; conflicting options raise :class:`ConfigError` here, not later."""
        from bot.sessions import create_store
        from bot.understanding import IndexRetriever, ModelUnderstander
        from nlu.inference import NLUModel
        from retrieval.qa_index import QAIndex

        check_options(config)
        paths = config.paths
        domain = load_domain(paths.domain)
        nlu_config = config.nlu
        model = NLUModel.load(paths.model_dir, device=nlu_config.device, backend=nlu_config.backend,
                              batch_size=nlu_config.batch_size, max_length=nlu_config.max_length,
                              oos_threshold=nlu_config.oos_threshold)
        check_against_model(domain, model.labels.intents, paths.domain)
        retriever = None
        if (paths.index_dir / "csbot-index.json").is_file():
            retriever = IndexRetriever(QAIndex.load(paths.index_dir, config.retrieval), max_batch=config.server.max_batch,
                                       max_wait_ms=config.server.batch_window_ms)
        elif any(spec.retrieve for spec in domain.intents.values()):
            log.warning("no Q&A index in %s: questions for retrieval will get the fallback", paths.index_dir)
        store = create_store(config.sessions)
        sink = build_transcript_sink(config) if transcripts else None
        nlu = ModelUnderstander(model, max_batch=config.server.max_batch, max_wait_ms=config.server.batch_window_ms)
        manager = DialogueManager(domain, nlu, store, retriever, sink,
                                  model_timeout_seconds=config.bot.model_timeout_seconds)
        return cls(config, domain, manager, store, nlu, retriever, sink)

    @classmethod
    def for_manager(cls, manager: DialogueManager, config: Config | None = None) -> BotApp:
        """An app around a manager wired by hand (tests, scripts, a custom deployment): the manager's store,
        models and transcript sink get the app's lifecycle and channels."""
        return cls(config, manager.domain, manager, manager.store, manager.nlu, manager.retriever, manager.transcripts)

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect the store and the transcript sinks (a bad URL fails here, clearly) and warm both models.

        If a step fails, what the earlier steps opened is closed again before the error propagates.
        """
        opened: list[Callable[[], Awaitable[None]]] = []
        try:
            await self.store.start()
            opened.append(self.store.close)
            if self.transcripts is not None:
                opened.append(self.transcripts.close)
                await self.transcripts.start()
                await self.transcripts.ping()
            opened.append(self.nlu.close)
            # load the embedding model and warm both models now, not on a customer's first message
            await self.nlu.parse("hello")
            if self.retriever is not None:
                opened.append(self.retriever.close)
                await self.retriever.search("hello")
        except BaseException:
            for close in reversed(opened):
                try:
                    await close()
                except Exception as exc:  # noqa: BLE001 - the first error is the one to report
                    log.warning("releasing after a failed start: %s: %s", exc.__class__.__name__, exc)
            raise
        self._started = True

    async def stop(self) -> None:
        """Let the turns in flight finish their model calls, write every queued transcript, close the store."""
        await self.nlu.close()
        if self.retriever is not None:
            await self.retriever.close()
        if self.transcripts is not None:
            await self.transcripts.close()
        await self.store.close()
        self._started = False

    @property
    def started(self) -> bool:
        """Whether :meth:`start` has completed and :meth:`stop` has not been called since."""
        return self._started

    async def __aenter__(self) -> BotApp:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- channels ------------------------------------------------------------------------------------
    def register_output(self, output: OutputChannel, name: str | None = None) -> None:
        """Make ``output`` the way to reach conversations of channel ``name`` (default: its own name) later."""
        self.outputs[name or output.name] = output

    async def handle(self, message: Message, output: OutputChannel) -> Reply:
        """The :data:`~bot.channels.base.OnMessage` callback: answer ``message`` and send the reply to ``output``."""
        self.outputs.setdefault(message.channel, output)
        reply = await self.manager.handle(message)
        await output.send_reply(message.recipient_id or message.session_id, reply)
        return reply

    async def send_to(self, session_id: str, messages: list[OutgoingMessage]) -> bool:
        """Send ``messages`` to a conversation outside any request, through the channel it came from.

        False when the session is unknown or its channel has no registered output (nothing is sent).
        """
        state = await self.store.load(session_id)
        if state is None or state.channel is None:
            return False
        output = self.outputs.get(state.channel)
        if output is None:
            log.warning("session %s came from channel %r, which has no output registered", session_id, state.channel)
            return False
        recipient = state.recipient_id or session_id
        for message in messages:
            await output.send_message(recipient, message)
        return True

    def versions(self) -> Versions:
        """The versions and creation times of the NLU model and the Q&A index this bot answers with."""
        return self.manager.versions()

    async def reset(self, session_id: str) -> None:
        """Forget a conversation."""
        await self.manager.reset(session_id)


def check_options(config: Config) -> None:
    """Options that cannot work together, refused before anything is opened."""
    if config.server.workers > 1 and config.sessions.store == "memory":
        raise ConfigError(f"server.workers: {config.server.workers} workers cannot share the memory session store "
                          "(each process would keep its own conversations): set sessions.store: redis")


def build_transcript_sink(config: Config) -> TranscriptSink:
    """The configured transcript sinks (``transcripts.sinks``), the Redis stream only with the Redis store."""
    from bot.transcripts import create_sink

    redis_url = config.sessions.url if config.sessions.store == "redis" else None
    return create_sink(config.transcripts, config.paths.transcripts, redis_url)


__all__ = ["BotApp", "build_transcript_sink", "check_options"]
