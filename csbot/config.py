"""Reading the YAML configuration: ``configs/default.yaml`` unless another file is given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from csbot.errors import ConfigError

#: The repository's configs/ folder; installed copies fall back to the defaults in code.
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"


def read_config(path: str | Path | None = None) -> dict[str, Any]:
    """The whole config file as a dict; a missing default file means built-in defaults."""
    if path is None:
        if not DEFAULT_CONFIG.is_file():
            return {}
        path = DEFAULT_CONFIG
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping of sections")
    return data


def validated(model: type[BaseModel], values: dict[str, Any], where: str) -> Any:
    """``model(**values)``, with validation errors turned into one :class:`ConfigError` naming each field."""
    try:
        return model(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or where}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{where}: {problems}") from exc


def load_section(section: str, path: str | Path | None, model: type[BaseModel]) -> dict[str, Any]:
    """One section of the config, validated against ``model`` so typos fail with the field named."""
    data = read_config(path)
    values = data.get(section) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path or DEFAULT_CONFIG}: section {section!r} must be a mapping")
    try:
        model(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{section}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path or DEFAULT_CONFIG}: {problems}") from exc
    return dict(values)
