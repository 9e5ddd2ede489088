"""Making a bot's models ready: train the NLU model and build the Q&A index when missing or out of date.

This is how ``csbot chat`` runs the demo with nothing else set up. It lives in ``training`` (it trains),
and the CLI calls it before building the bot, so the running bot never imports training code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from csbot.errors import CsbotError, IncompatibleArtefactError

if TYPE_CHECKING:
    from csbot.settings import Config

log = logging.getLogger(__name__)


def prepare_models(config: Config, show_progress: bool = True, say: Callable[[str], object] = print) -> None:
    """Train the NLU model and build the Q&A index of ``config`` when they are missing or older than their data.

    The model is retrained when its data fingerprint differs from the training split of the current NLU
    data; the index is rebuilt when a Q&A file changed after it was built.
    """
    from training.data import fingerprint, load_dataset, stratified_split

    paths = config.paths
    training = config.training
    has_model = (paths.model_dir / "csbot-model.json").is_file()
    reason = None
    if not has_model or all(p.exists() for p in paths.nlu_data):  # a model shipped without its data is kept
        examples = load_dataset([str(p) for p in paths.nlu_data])
        if training.dev_split > 0:
            train, dev = stratified_split(examples, training.dev_split, training.seed)
        else:
            train, dev = examples, []
        reason = model_outdated(paths.model_dir, fingerprint(train))
    if reason is not None:
        from training.trainer import Trainer

        say(f"{reason}: training one on {len(train)} examples (dev {len(dev)}).")
        Trainer(training, train, dev, out_dir=paths.model_dir, show_progress=show_progress).run()
    reason = index_outdated(paths.index_dir, paths.qa_data)
    if paths.qa_data and reason is not None:
        from retrieval.qa_index import QAIndex
        from training.qa_data import load_qa

        records = load_qa([str(p) for p in paths.qa_data])
        say(f"{reason}: indexing {len(records)} past questions.")
        QAIndex.build(records, config.retrieval).save(paths.index_dir)


def model_outdated(model_dir: Path, data_fingerprint: str) -> str | None:
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


def index_outdated(index_dir: Path, qa_files: list[Path]) -> str | None:
    """Why the Q&A index must be (re)built, or None when it is newer than every Q&A file."""
    manifest = index_dir / "csbot-index.json"
    if not manifest.is_file():
        return f"No Q&A index in {index_dir} yet"
    built = manifest.stat().st_mtime
    changed = [p for p in qa_files if p.exists() and p.stat().st_mtime > built]
    if changed:
        return f"{changed[0]} changed since the Q&A index in {index_dir} was built"
    return None


__all__ = ["index_outdated", "model_outdated", "prepare_models"]
