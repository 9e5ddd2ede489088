"""Building a running bot from the config: session store, transcript sinks, NLU, retriever, dialogue manager.

:meth:`BotApp.build` is the one place that wires the parts from a :class:`csbot.settings.Config` and
rejects conflicting options when it builds. The lifecycle is explicit: ``await app.start()`` (or
``async with app``) connects and warms the models, and releases what it opened if a step fails;
``await app.stop()`` drains the batched model calls and the transcript queue, then closes the store.

Channels hand messages to :meth:`BotApp.handle` (the :data:`~bot.channels.base.OnMessage` callback) and
register their output side, so :meth:`BotApp.send_to` can reach a conversation later (hand-over, agents).
A reply the channel could not deliver (:class:`~csbot.errors.DeliveryError`) is recorded in the transcript
(source ``undelivered``, the reason in ``decision``).

Hand-over to a person: the app wraps the manager's hand-over hook (the domain's own still runs) so each
handed-over conversation is added to :attr:`BotApp.handoffs` (:mod:`bot.sessions.handoffs`) and, when the
server set a :attr:`BotApp.notifier`, a helpdesk is told. :meth:`BotApp.handed_over`, :meth:`BotApp.send_as_agent`
and :meth:`BotApp.release` are what the agent API (:mod:`bot.server.agents`) calls.
Models must exist: ``training.prepare.prepare_models`` makes them, called by the CLI before building.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from bot.channels.base import OutputChannel
from bot.conversations import CURRENT_TEXT, compose_hooks, handoff_info, last_messages, outgoing_turn
from bot.dialogue import DialogueManager
from bot.dialogue.models import Models
from bot.domain import Domain, load_domain
from bot.messages import Message, OutgoingMessage, Reply
from bot.sessions.base import SessionStore
from bot.sessions.handoffs import HandoffInfo, HandoffList, MemoryHandoffList
from bot.sessions.state import SessionState
from bot.transcripts.base import TranscriptSink
from bot.turns import Versions
from bot.understanding import Retriever, Understander
from csbot.errors import ConfigError, DeliveryError, UnreachableError
from csbot.transcripts import TranscriptTurn

if TYPE_CHECKING:
    from bot.reload import ModelSwitcher
    from bot.server.notify import HandoffNotifier
    from csbot.settings import Config

log = logging.getLogger(__name__)


class BotApp:
    """A dialogue manager with its store, models and transcript sinks; start it before use, stop it after."""

    def __init__(self, config: Config | None, domain: Domain, manager: DialogueManager, store: SessionStore,
                 nlu: Understander, retriever: Retriever | None, transcripts: TranscriptSink | None,
                 handoffs: HandoffList | None = None) -> None:
        self.config, self.domain, self.manager = config, domain, manager
        self.store, self.transcripts = store, transcripts
        if manager.nlu is not nlu or manager.retriever is not retriever:
            manager.models = Models(nlu, retriever)
        #: switches to newly promoted versions while running (set by :meth:`build` when the config has a registry)
        self.switcher: ModelSwitcher | None = None
        self._batch_observers: dict[str, Callable[[int], object]] = {}
        self.outputs: dict[str, OutputChannel] = {}
        #: The conversations handed over to a person and not yet released.
        self.handoffs: HandoffList = handoffs if handoffs is not None else MemoryHandoffList()
        #: Tells a helpdesk of each hand-over; set by the server (``server.agents.handoff_webhook``).
        self.notifier: HandoffNotifier | None = None
        escalation = manager.escalation
        escalation.hook = compose_hooks(self._on_handoff, escalation.hook)
        self._started = False

    @classmethod
    def build(cls, config: Config, *, transcripts: bool = True) -> BotApp:
        """Wire every part from ``config``; conflicting options raise :class:`ConfigError` here, not later."""
        from bot.reload import ModelSwitcher, artefact_dirs, load_models
        from bot.sessions import create_store
        from bot.sessions.handoffs import create_handoff_list

        check_options(config)
        paths = config.paths
        domain = load_domain(paths.domain)
        registry = None
        if paths.registry is not None:
            from csbot.registry import create_registry

            registry = create_registry(config.registry, paths.registry)
        model_dir, index_dir = artefact_dirs(config, registry)
        models = load_models(config, domain, model_dir, index_dir, paths.domain)
        if models.retriever is None and any(spec.retrieve for spec in domain.intents.values()):
            log.warning("no Q&A index in %s: questions for retrieval will get the fallback", index_dir)
        store = create_store(config.sessions)
        sink = build_transcript_sink(config) if transcripts else None
        from nlu.extractors import EntityPipeline

        entities = EntityPipeline.from_config(config.nlu, paths.entity_patterns)
        manager = DialogueManager(domain, models.nlu, store, models.retriever, sink,
                                  model_timeout_seconds=config.bot.model_timeout_seconds, entities=entities)
        app = cls(config, domain, manager, store, models.nlu, models.retriever, sink, create_handoff_list(config.sessions))
        if registry is not None:
            app.switcher = ModelSwitcher(app, registry, config)
        return app

    @classmethod
    def for_manager(cls, manager: DialogueManager, config: Config | None = None) -> BotApp:
        """An app around a manager wired by hand (tests, scripts, a custom deployment): the manager's store,
        models and transcript sink get the app's lifecycle and channels; handed-over conversations are listed
        as ``config.sessions`` says (in memory without a config)."""
        from bot.sessions.handoffs import create_handoff_list

        handoffs = create_handoff_list(config.sessions) if config is not None else None
        return cls(config, manager.domain, manager, manager.store, manager.nlu, manager.retriever, manager.transcripts,
                   handoffs)

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect the store and the transcript sinks (a bad URL fails here, clearly) and warm both models.

        If a step fails, what the earlier steps opened is closed again before the error propagates.
        """
        opened: list[Callable[[], Awaitable[None]]] = []
        try:
            await self.store.start()
            opened.append(self.store.close)
            opened.append(self.handoffs.close)
            await self.handoffs.start()
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
            if self.switcher is not None:
                opened.append(self.switcher.stop)
                await self.switcher.start()
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
        if self.switcher is not None:
            await self.switcher.stop()
        await self.nlu.close()
        if self.retriever is not None:
            await self.retriever.close()
        if self.transcripts is not None:
            await self.transcripts.close()
        await self.handoffs.close()
        await self.store.close()
        self._started = False

    # -- models ---------------------------------------------------------------------------------------
    @property
    def nlu(self) -> Understander:
        """The NLU model new turns parse with."""
        return self.manager.nlu

    @nlu.setter
    def nlu(self, understander: Understander) -> None:
        self.manager.nlu = understander

    @property
    def retriever(self) -> Retriever | None:
        """The Q&A index new turns search."""
        return self.manager.retriever

    @retriever.setter
    def retriever(self, retriever: Retriever | None) -> None:
        self.manager.retriever = retriever

    def observe_batches(self, model: str, callback: Callable[[int], object]) -> None:
        """Have ``callback(size)`` called as each batched call of ``model`` (``nlu`` or ``retrieval``) starts,
        for the models of now and those switched to later."""
        self._batch_observers[model] = callback
        self.adopt(self.manager.models)

    def adopt(self, models: Models) -> None:
        """Give ``models`` what the running ones have (the batch observers) before they take traffic."""
        for name, callback in self._batch_observers.items():
            target = models.nlu if name == "nlu" else models.retriever
            if target is not None:
                target.observe_batches(callback)

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
        """The :data:`~bot.channels.base.OnMessage` callback: answer ``message`` and send the reply to ``output``.

        A reply the channel could not deliver is logged and recorded in the transcript; the reply is returned.
        """
        self.outputs.setdefault(message.channel, output)
        token = CURRENT_TEXT.set(message.text)
        try:
            reply = await self.manager.handle(message)
        finally:
            CURRENT_TEXT.reset(token)
        try:
            await output.send_reply(message.recipient_id or message.session_id, reply)
        except DeliveryError as exc:
            log.error("session %s: the reply was not delivered: %s", message.session_id, exc)
            state = await self._load_quietly(message.session_id)
            await self._record(outgoing_turn(message.session_id, message.channel, reply.messages, error=exc,
                                             turn=state.turn_count if state else 0, handoff=reply.handoff,
                                             user_text=message.text))
        return reply

    async def send_to(self, session_id: str, messages: list[OutgoingMessage], *, author: str = "") -> bool:
        """Send ``messages`` to a conversation outside any request, through the channel it came from.

        False when the session is unknown (nothing is sent). A channel that cannot reach it (none registered,
        or one without push such as REST) raises :class:`~csbot.errors.UnreachableError`, a failed delivery
        the channel's :class:`~csbot.errors.DeliveryError`; both are recorded in the transcript first. With
        ``author`` (an agent), the messages are recorded as that person's turn once delivered.
        """
        state = await self.store.load(session_id)
        if state is None or state.channel is None:
            return False
        try:
            output = self.outputs.get(state.channel)
            if output is None:
                raise UnreachableError(f"session {session_id} came from channel {state.channel!r}, which has no "
                                       "output registered on this server")
            recipient = state.recipient_id or session_id
            for message in messages:
                await output.send_message(recipient, message)
        except DeliveryError as exc:
            log.warning("session %s: not delivered: %s", session_id, exc)
            await self._record(outgoing_turn(session_id, state.channel, messages, turn=state.turn_count,
                                             handoff=state.handoff, author=author, error=exc))
            raise
        if author:
            await self._record(outgoing_turn(session_id, state.channel, messages, turn=state.turn_count,
                                             handoff=state.handoff, author=author))
        return True

    # -- hand-over to a person ---------------------------------------------------------------------------------
    async def _on_handoff(self, state: SessionState, reason: str) -> None:
        """Part of the manager's hand-over hook: list the conversation, tell the helpdesk (in the background)."""
        info = handoff_info(state, reason, time.time())
        if self.notifier is not None:
            from bot.server.notify import handoff_payload

            self.notifier.notify(handoff_payload(state.session_id, state.channel, reason, info.handed_over_at,
                                                 last_messages(state, CURRENT_TEXT.get())))
        await self.handoffs.add(state.session_id, info)

    async def handed_over(self) -> list[HandoffInfo]:
        """The conversations handed over to a person and not released yet, the most recent first."""
        return await self.handoffs.list()

    async def send_as_agent(self, session_id: str, author: str, messages: list[OutgoingMessage]) -> bool:
        """An agent's ``messages`` to the customer, recorded with their ``author`` (see :meth:`send_to`)."""
        if not author:
            raise ValueError("an agent's message needs its author")
        return await self.send_to(session_id, messages, author=author)

    async def release(self, session_id: str) -> bool:
        """Give the conversation back to the bot; whether it was in the list of handed-over conversations."""
        await self.manager.release_handoff(session_id)
        return await self.handoffs.remove(session_id)

    async def _load_quietly(self, session_id: str) -> SessionState | None:
        try:
            return await self.store.load(session_id)
        except Exception as exc:  # noqa: BLE001 - only to number a transcript turn
            log.debug("loading session %s: %s", session_id, exc)
            return None

    async def _record(self, turn: TranscriptTurn) -> None:
        if self.transcripts is None:
            return
        try:
            await self.transcripts.append(turn)
        except Exception as exc:  # noqa: BLE001 - recording must not hide the delivery's own outcome
            log.error("transcript append failed: %s: %s", exc.__class__.__name__, exc)

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
