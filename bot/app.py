"""Building a running bot from config: domain, NLU model, Q&A index, session store, transcripts.

``BotApp`` is the one place that wires the parts and rejects conflicting options; it has an explicit
lifecycle (``await app.start()`` / ``await app.stop()`` or ``async with``). ``prepare_models`` trains
the NLU model and builds the index when they are missing, which is how ``csbot chat`` runs the demo
with nothing else configured.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bot.dialogue import DialogueManager
from bot.domain import Domain, check_against_model, load_domain
from csbot.config import DEFAULT_CONFIG, load_section, validated
from csbot.errors import ConfigError, CsbotError, IncompatibleArtefactError

log = logging.getLogger(__name__)


class BotConfig(BaseModel):
    """Section ``bot``: where the domain, its data and the trained artefacts live.

    Relative paths are relative to the config file's folder.
    """

    model_config = ConfigDict(extra="forbid")

    domain: str = "demo/domain.yml"
    nlu_data: list[str] = Field(default_factory=lambda: ["demo/nlu.yml"])
    qa_data: list[str] = Field(default_factory=lambda: ["demo/qa.csv"])
    model_dir: str = "../models/demo"
    index_dir: str = "../models/demo-index"

    @classmethod
    def from_file(cls, path: str | Path | None = None, **overrides: object) -> BotConfig:
        values = load_section("bot", path, cls)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return validated(cls, values, "bot options")


def config_dir(config_path: str | Path | None) -> Path:
    """The folder relative paths in a config file are resolved against."""
    return Path(config_path).resolve().parent if config_path else DEFAULT_CONFIG.parent


class BotPaths:
    """The resolved paths of a :class:`BotConfig`."""

    def __init__(self, config: BotConfig, config_path: str | Path | None) -> None:
        base = config_dir(config_path)

        def resolve(p: str) -> Path:
            path = Path(os.path.expanduser(p))
            return path if path.is_absolute() else (base / path).resolve()

        self.domain = resolve(config.domain)
        self.nlu_data = [resolve(p) for p in config.nlu_data]
        self.qa_data = [resolve(p) for p in config.qa_data]
        self.model_dir = resolve(config.model_dir)
        self.index_dir = resolve(config.index_dir)


def prepare_models(paths: BotPaths, config_path: str | Path | None, show_progress: bool = True,
                   say: Any = print) -> None:
    """Train the NLU model and build the Q&A index when they are missing or older than their data.

    The model is retrained when its data fingerprint differs from the training split of the current NLU
    data; the index is rebuilt when a Q&A file changed after it was built.
    """
    from training.config import TrainingConfig
    from training.data import fingerprint, load_dataset, stratified_split

    has_model = (paths.model_dir / "csbot-model.json").is_file()
    if has_model and not all(p.exists() for p in paths.nlu_data):
        reason = None  # a model shipped without its data: nothing to compare it with
    else:
        config = TrainingConfig.from_file(config_path)
        examples = load_dataset([str(p) for p in paths.nlu_data])
        train, dev = stratified_split(examples, config.dev_split, config.seed) if config.dev_split > 0 else (examples, [])
        reason = _model_outdated(paths.model_dir, fingerprint(train))
    if reason is not None:
        from training.trainer import Trainer

        say(f"{reason}: training one on {len(train)} examples (dev {len(dev)}).")
        Trainer(config, train, dev, out_dir=paths.model_dir, show_progress=show_progress).run()
    reason = _index_outdated(paths.index_dir, paths.qa_data)
    if paths.qa_data and reason is not None:
        from retrieval.config import RetrievalConfig
        from retrieval.qa_index import QAIndex
        from training.qa_data import load_qa

        records = load_qa([str(p) for p in paths.qa_data])
        say(f"{reason}: indexing {len(records)} past questions.")
        QAIndex.build(records, RetrievalConfig.from_file(config_path)).save(paths.index_dir)


def _model_outdated(model_dir: Path, data_fingerprint: str) -> str | None:
    """Why the NLU model must be (re)trained, or None when it is there and trained on this data."""
    from nlu.artefact import read_manifest

    if not (model_dir / "csbot-model.json").is_file():
        return f"No NLU model in {model_dir} yet"
    try:
        trained_on = read_manifest(model_dir).get("data_fingerprint")
    except IncompatibleArtefactError:
        return f"The NLU model in {model_dir} was saved by an incompatible csbot version"
    except CsbotError:
        return None  # a damaged model is reported, with its file, when it is loaded
    if trained_on and trained_on != data_fingerprint:
        return f"The NLU data changed since the model in {model_dir} was trained"
    return None


def _index_outdated(index_dir: Path, qa_files: list[Path]) -> str | None:
    """Why the Q&A index must be (re)built, or None when it is newer than every Q&A file."""
    manifest = index_dir / "csbot-index.json"
    if not manifest.is_file():
        return f"No Q&A index in {index_dir} yet"
    built = manifest.stat().st_mtime
    changed = [p for p in qa_files if p.exists() and p.stat().st_mtime > built]
    if changed:
        return f"{changed[0]} changed since the Q&A index in {index_dir} was built"
    return None


class BotApp:
    """A ready dialogue manager with its store and transcript sinks; start it before use, stop it after."""

    def __init__(self, manager: DialogueManager, domain: Domain, paths: BotPaths, store_name: str) -> None:
        self.manager, self.domain, self.paths, self.store_name = manager, domain, paths, store_name

    @classmethod
    def build(cls, config_path: str | Path | None = None, redis_url: str | None = None, store: str | None = None,
              model_dir: str | None = None, index_dir: str | None = None, transcripts: bool = True) -> BotApp:
        """Wire every part from config. ``redis_url`` implies the Redis store; models must exist."""
        from bot.sessions import SessionsConfig, create_store
        from bot.transcripts import BackgroundSink, TeeSink, TranscriptsConfig
        from bot.understanding import IndexRetriever, ModelUnderstander
        from nlu.config import NLUConfig
        from nlu.inference import NLUModel
        from retrieval.config import RetrievalConfig
        from retrieval.qa_index import QAIndex

        if store == "memory" and redis_url:
            raise ConfigError("--redis conflicts with the memory store: drop one of them")
        config = BotConfig.from_file(config_path, model_dir=model_dir, index_dir=index_dir)
        paths = BotPaths(config, config_path)
        domain = load_domain(paths.domain)
        nlu_config = NLUConfig.from_file(config_path)
        model = NLUModel.load(paths.model_dir, device=nlu_config.device, backend=nlu_config.backend,
                              batch_size=nlu_config.batch_size, max_length=nlu_config.max_length,
                              oos_threshold=nlu_config.oos_threshold)
        check_against_model(domain, model.labels.intents, paths.domain)
        retriever = None
        if (paths.index_dir / "csbot-index.json").is_file():
            retriever = IndexRetriever(QAIndex.load(paths.index_dir, RetrievalConfig.from_file(config_path)))
        elif any(spec.retrieve for spec in domain.intents.values()):
            log.warning("no Q&A index in %s: questions for retrieval will get the fallback", paths.index_dir)
        overrides: dict[str, Any] = {"store": store} if store else {}
        if redis_url:
            overrides.update(store="redis", url=redis_url)
        sessions = SessionsConfig.from_file(config_path, **overrides)
        session_store = create_store(sessions)
        sink = None
        if transcripts:
            transcripts_config = TranscriptsConfig.from_file(config_path)
            sink = transcripts_config.create_sink(sessions.url if sessions.store == "redis" else None, config_path)
            if not isinstance(sink, TeeSink):
                sink = TeeSink([sink])  # logs a failing sink once per outage, not on every turn
            if transcripts_config.background:
                sink = BackgroundSink(sink, transcripts_config.max_queued)
        manager = DialogueManager(domain, ModelUnderstander(model), session_store, retriever, sink)
        return cls(manager, domain, paths, sessions.store)

    async def start(self) -> None:
        """Check the session store and any Redis transcript stream answer (a bad URL fails here, clearly)."""
        await self.manager.store.start()
        for sink in getattr(self.manager.transcripts, "sinks", []):
            if hasattr(sink, "ping"):
                await sink.ping()
        # load the embedding model and warm both models now, not on a customer's first message
        await self.manager.nlu.parse("hello")
        if self.manager.retriever is not None:
            await self.manager.retriever.search("hello")

    async def stop(self) -> None:
        await self.manager.store.close()
        if self.manager.transcripts is not None:
            await self.manager.transcripts.close()

    async def __aenter__(self) -> BotApp:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
