"""A running bot switching to newly promoted model and index versions, without a restart.

With ``registry.path`` set, :meth:`bot.app.BotApp.build` loads the registry's current (promoted) versions and
gives the app a :class:`ModelSwitcher`. The switcher notices a promotion or a rollback three ways: it polls the
registry's ``generation()`` every ``registry.watch_seconds``; with the Redis session store it listens on the
``<namespace>:<registry.redis_channel>`` pub/sub channel, so every worker of every server sharing that Redis
looks at once (:func:`announce` publishes there: the admin endpoint and ``csbot models promote`` call it);
and :meth:`ModelSwitcher.reload` can be called directly (``POST /admin/reload``).

A switch loads the new versions beside the old ones, off the event loop, checks the model against the
domain, and warms both with a first call before any customer's turn reaches them; then the dialogue manager
starts new turns with the new pair (:meth:`~bot.dialogue.DialogueManager.switch`), the turns already under
way finish with the old pair, and the old pair is closed once they are done. A version that fails to load is
reported (logged, counted, shown by ``/version``) and the old one keeps serving; the same generation is not
tried again until the registry changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.dialogue.models import Models
from bot.domain import Domain, check_against_model
from csbot.errors import CsbotError

if TYPE_CHECKING:
    from bot.app import BotApp
    from bot.understanding import Retriever, Understander
    from csbot.registry import Registry
    from csbot.settings import Config

log = logging.getLogger(__name__)

#: How long the old models wait for the turns still using them before they are closed anyway (seconds).
DRAIN_SECONDS = 60.0


def artefact_dirs(config: Config, registry: Registry | None) -> tuple[Path, Path]:
    """The model and index directories to serve: the registry's promoted versions where it has them, else
    ``bot.model_dir`` and ``bot.index_dir``."""
    paths = config.paths
    model_dir, index_dir = paths.model_dir, paths.index_dir
    if registry is not None:
        model, index = registry.current("model"), registry.current("index")
        model_dir = model.path if model is not None else model_dir
        index_dir = index.path if index is not None else index_dir
    return model_dir, index_dir


def load_understander(config: Config, domain: Domain, model_dir: Path, domain_path: Path | None = None) -> Understander:
    """The NLU model of ``model_dir``, checked against ``domain``, behind its micro-batcher. Blocking."""
    from bot.understanding import ModelUnderstander
    from nlu.inference import NLUModel

    nlu = config.nlu
    model = NLUModel.load(model_dir, device=nlu.device, backend=nlu.backend, batch_size=nlu.batch_size,
                          max_length=nlu.max_length, oos_threshold=nlu.oos_threshold, oos_neighbours=nlu.oos_neighbours)
    check_against_model(domain, model.labels.intents, domain_path or config.paths.domain)
    return ModelUnderstander(model, max_batch=config.server.max_batch, max_wait_ms=config.server.batch_window_ms)


def load_retriever(config: Config, index_dir: Path | None) -> Retriever | None:
    """The Q&A index of ``index_dir`` behind its micro-batcher; None when the directory holds none. Blocking."""
    from bot.understanding import IndexRetriever
    from retrieval.qa_index import QAIndex

    if index_dir is None or not (index_dir / "csbot-index.json").is_file():
        return None
    return IndexRetriever(QAIndex.load(index_dir, config.retrieval), max_batch=config.server.max_batch,
                          max_wait_ms=config.server.batch_window_ms)


def load_models(config: Config, domain: Domain, model_dir: Path, index_dir: Path | None,
                domain_path: Path | None = None) -> Models:
    """Both models (see :func:`load_understander` and :func:`load_retriever`). Blocking: call it off the
    event loop when one runs."""
    return Models(load_understander(config, domain, model_dir, domain_path), load_retriever(config, index_dir))


def channel_name(config: Config) -> str:
    """The pub/sub channel that tells every worker sharing the session Redis to look at the registry."""
    return f"{config.sessions.namespace}:{config.registry.redis_channel}"


async def announce(config: Config) -> bool:
    """Tell every server sharing the session Redis that the registry changed; False (logged) when the config
    uses no Redis or it cannot be reached (the servers' polling still sees the change)."""
    if config.sessions.store != "redis":
        return False
    from csbot.redis_client import client_from_url

    client = client_from_url(config.sessions.url, config.sessions.socket_timeout_seconds)
    try:
        await client.publish(channel_name(config), "registry changed")
        return True
    except Exception as exc:  # noqa: BLE001 - announcing is a shortcut; the polling is the guarantee
        log.warning("could not announce the registry change on Redis: %s: %s", exc.__class__.__name__, exc)
        return False
    finally:
        await client.aclose()


@dataclass
class ReloadStatus:
    """What ``/version`` shows of the switcher: what runs, when it last switched, the last failure."""

    generation: str | None = None
    model: str = ""
    index: str = ""
    switches: int = 0
    failures: int = 0
    switched_at: float | None = None
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ModelSwitcher:
    """Watches a registry and switches ``app`` to its promoted versions (see the module docstring)."""

    app: BotApp
    registry: Registry
    config: Config
    #: called with ``(outcome, seconds)`` after each attempt: ``switched``, ``unchanged`` or ``failed`` (metrics)
    on_reload: Callable[[str, float], object] | None = None
    status: ReloadStatus = field(default_factory=ReloadStatus)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    _tasks: set[asyncio.Task] = field(default_factory=set, init=False, repr=False)

    async def start(self) -> None:
        """Remember what runs now and start watching."""
        versions = self.app.versions()
        self.status.model, self.status.index = versions.model, versions.index
        self.status.generation = await asyncio.to_thread(self.registry.generation)
        if self.config.registry.watch_seconds > 0:
            self._spawn(self._poll(), "registry poll")
        if self.config.sessions.store == "redis":
            self._spawn(self._listen(), "registry announcements")

    async def stop(self) -> None:
        """Stop watching; wait for the old models being retired to close."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def _spawn(self, coro: Any, name: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def check(self) -> bool:
        """Switch when the registry's generation changed since the last look; True when it switched."""
        try:
            generation = await asyncio.to_thread(self.registry.generation)
        except CsbotError as exc:
            log.warning("the registry cannot be read; the current versions keep serving: %s", exc)
            return False
        if generation == self.status.generation:
            return False
        return await self.reload()

    async def reload(self) -> bool:
        """Load the registry's promoted versions if they differ from the running ones, warm them, switch.
        True when it switched; a failure is reported in :attr:`status` and the old versions keep serving."""
        async with self._lock:
            started = time.perf_counter()
            outcome = "unchanged"
            try:
                switched = await self._reload()
                outcome = "switched" if switched else "unchanged"
                return switched
            except Exception as exc:  # noqa: BLE001 - a bad version must never stop the running one
                outcome = "failed"
                self.status.failures += 1
                self.status.last_error = f"{exc.__class__.__name__}: {exc}"
                log.error("switching to the promoted versions failed; %s and %s keep serving: %s",
                          self.status.model or "the model", self.status.index or "the index", self.status.last_error)
                return False
            finally:
                if self.on_reload is not None:
                    self.on_reload(outcome, time.perf_counter() - started)

    async def _reload(self) -> bool:
        registry = self.registry
        generation = await asyncio.to_thread(registry.generation)
        self.status.generation = generation  # a failing generation is not retried until the registry changes
        model_entry = await asyncio.to_thread(registry.current, "model")
        index_entry = await asyncio.to_thread(registry.current, "index")
        running = self.app.manager.models
        running_versions = running.versions()
        want_model = model_entry.version if model_entry is not None else running_versions.model
        want_index = index_entry.version if index_entry is not None else running_versions.index
        if (want_model, want_index) == (running_versions.model, running_versions.index):
            return False
        model_dir, index_dir = artefact_dirs(self.config, registry)
        loop = asyncio.get_running_loop()
        # only what changed is loaded: a new index alone keeps the running NLU model, and the other way round
        nlu, retriever = running.nlu, running.retriever
        if want_model != running_versions.model:
            nlu = await loop.run_in_executor(None, partial(load_understander, self.config, self.app.domain, model_dir))
        try:
            if want_index != running_versions.index:
                retriever = await loop.run_in_executor(None, partial(load_retriever, self.config, index_dir))
            models = Models(nlu, retriever)
            await models.nlu.parse("hello")  # warmed before any customer's turn reaches them
            if models.retriever is not None:
                await models.retriever.search("hello")
        except BaseException:
            await _close_new(Models(nlu, retriever), running)
            raise
        self.app.adopt(models)
        previous = self.app.manager.switch(models)
        self._spawn(_retire(previous, models), "retire old models")
        self.status.model, self.status.index = models.versions().model, models.versions().index
        self.status.switches += 1
        self.status.switched_at = time.time()
        self.status.last_error = None
        log.info("now answering with model %s and index %s", self.status.model, self.status.index or "(none)")
        return True

    async def _poll(self) -> None:
        interval = self.config.registry.watch_seconds
        while True:
            await asyncio.sleep(interval)
            await self.check()

    async def _listen(self) -> None:
        """Check the registry whenever a message arrives on the channel; reconnect after a failure."""
        from csbot.redis_client import client_from_url, is_cluster_url

        sessions = self.config.sessions
        if is_cluster_url(sessions.url):  # cluster pub/sub is not used: the polling covers a cluster
            return
        while True:
            client = client_from_url(sessions.url, sessions.socket_timeout_seconds)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(channel_name(self.config))
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                    if message is not None:
                        await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis may come back; the polling goes on meanwhile
                log.debug("registry announcements: %s: %s; listening again shortly", exc.__class__.__name__, exc)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                    await client.aclose()


async def _retire(old: Models, new: Models) -> None:
    """Close the parts of ``old`` that ``new`` does not reuse, once no turn uses ``old``."""
    if not await old.drained(DRAIN_SECONDS):
        log.warning("%d turns still use the old models after %g s; closing them anyway", old.turns_in_flight, DRAIN_SECONDS)
    if old.nlu is not new.nlu:
        await old.nlu.close()
    if old.retriever is not None and old.retriever is not new.retriever:
        await old.retriever.close()


async def _close_new(loaded: Models, running: Models) -> None:
    """Release what a failed switch loaded (never the parts still serving)."""
    with contextlib.suppress(Exception):
        if loaded.nlu is not running.nlu:
            await loaded.nlu.close()
        if loaded.retriever is not None and loaded.retriever is not running.retriever:
            await loaded.retriever.close()


__all__ = ["DRAIN_SECONDS", "ModelSwitcher", "ReloadStatus", "announce", "artefact_dirs", "channel_name", "load_models",
           "load_retriever", "load_understander"]
