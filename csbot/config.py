"""Reading configuration files: strict YAML, dotted-key overrides, errors that name the file and the key.

The sections' models live beside their code (``nlu/config.py``, ``bot/sessions/config.py`` ...); the one
object composed of them is :class:`bot.config.Config`, built by :func:`bot.config.load_config`. This
module holds what that needs and what any package may reuse: a YAML reader that refuses duplicate keys,
:func:`apply_overrides` for CLI flags, and :func:`validation_error` that turns pydantic's report into one
:class:`~csbot.errors.ConfigError` such as ``config.yml: sessions.ttl_seconds: must be > 0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from csbot.errors import ConfigError


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (YAML would keep the last silently)."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first given on line {seen[key] + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def read_yaml(path: str | Path) -> Any:
    """The parsed YAML of ``path``; a missing file, bad YAML or a duplicate key is a :class:`ConfigError`
    naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from exc


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A config file as a mapping of sections (an empty file is an empty mapping)."""
    data = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file is a mapping of sections (nlu:, sessions:, bot: ...)")
    return data


def apply_overrides(data: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with each ``"section.key": value`` of ``overrides`` set (``None`` values are skipped)."""
    for dotted, value in overrides.items():
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        node = data
        for i, part in enumerate(parents):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"{'.'.join(parents[: i + 1])}: must be a mapping to set {dotted}")
            node = child
        node[leaf] = value
    return data


def _describe(err: Mapping[str, Any]) -> str:
    """A short message for one pydantic error: ``must be > 0`` rather than pydantic's sentence."""
    ctx = err.get("ctx") or {}
    kind = err.get("type", "")
    short = {
        "greater_than": "must be > {gt}",
        "greater_than_equal": "must be >= {ge}",
        "less_than": "must be < {lt}",
        "less_than_equal": "must be <= {le}",
        "extra_forbidden": "unknown key",
        "missing": "required",
        "string_too_short": "must not be empty",
        "literal_error": "must be one of {expected}",
        "int_parsing": "must be an integer",
        "int_type": "must be an integer",
        "int_from_float": "must be a whole number",
        "float_parsing": "must be a number",
        "float_type": "must be a number",
        "bool_parsing": "must be true or false",
        "bool_type": "must be true or false",
        "string_type": "must be a string",
        "list_type": "must be a list",
        "dict_type": "must be a mapping",
        "model_type": "must be a mapping",
        "string_pattern_mismatch": "does not match the pattern {pattern}",
    }.get(kind)
    if short is None:
        return str(err.get("msg", "invalid"))
    try:
        return short.format(**ctx)
    except (KeyError, IndexError):
        return str(err.get("msg", "invalid"))


def validation_error(exc: ValidationError, where: str, overridden: Mapping[str, Any] | None = None,
                     prefix: str = "") -> ConfigError:
    """One :class:`ConfigError` listing each invalid key of ``exc`` as ``where: dotted.key: problem``.

    Keys set by a flag (in ``overridden``) are reported as options, not as lines of the file.
    """
    problems = []
    for err in exc.errors():
        key = ".".join(str(p) for p in (prefix.split(".") if prefix else []) + list(err["loc"]))
        origin = "option" if overridden and key in overridden else where
        problems.append(f"{origin}: {key or '(top level)'}: {_describe(err)}")
    return ConfigError("; ".join(problems))


def validated(model: type[BaseModel], values: Mapping[str, Any], where: str, prefix: str = "") -> Any:
    """``model(**values)``, a validation failure turned into a :class:`ConfigError` naming each key."""
    try:
        return model(**values)
    except ValidationError as exc:
        raise validation_error(exc, where, prefix=prefix) from exc


__all__ = ["apply_overrides", "read_config_file", "read_yaml", "validated", "validation_error"]
