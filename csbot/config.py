"""Reading configuration files: strict YAML, dotted-key overrides, errors that name the file and the key.

The sections' models live beside their code (``nlu/config.py``, ``bot/sessions/config.py`` ...); the one
object composed of them is :class:`bot.config.Config`, built by :func:`bot.config.load_config`. This
module holds what that needs and what any package may reuse: :func:`read_yaml`, the one strict YAML reader
of csbot (config, domain, stories and Rasa NLU files alike: UTF-8 only, no duplicate keys, no unbuildable or
endlessly nested values, every error naming the file and line), :func:`apply_overrides` for CLI flags, and
:func:`validation_error` that turns pydantic's report into one :class:`~csbot.errors.ConfigError` such as
``config.yml: sessions.ttl_seconds: must be > 0`` (an unknown key gets a did-you-mean).
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from csbot.datafiles import read_text
from csbot.errors import ConfigError, CsbotError, DataError
from csbot.strict_json import MAX_DEPTH, value_problem

#: The most values a YAML file may expand to once its aliases are followed (a config, domain or story file
#: holds a few hundred; aliases can make a few lines expand to billions).
MAX_YAML_VALUES = 1_000_000

_MERGE_TAG = "tag:yaml.org,2002:merge"


class YAMLProblem(ValueError):
    """Why a YAML text cannot be read, and the 1-based line when known (callers raise their own error)."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.line = reason, line


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses what YAML would accept silently or crash on.

    A key given twice in one mapping (YAML keeps the last; a key merged in with ``<<`` may be overridden),
    nesting deeper than :data:`~csbot.datafiles.MAX_DEPTH`, and a scalar that cannot be built (an integer
    with thousands of digits, the 30th of February) are YAML errors with the line of the node at fault.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            reason = "a number has too many digits" if "digits" in str(exc) else str(exc)
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read the value {_scalar_text(node)}: {reason}", node.start_mark
            ) from exc


def _scalar_text(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        return repr(node.value if len(node.value) <= 40 else node.value[:37] + "...")
    return f"<{node.id}>"


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:  # merged keys may be overridden: that is what '<<' is for
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: construct_mapping names it
            continue
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first given on line {first + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def parse_yaml(text: str, nodes: bool = False) -> Any:
    """The strictly parsed YAML document of ``text`` (``None`` for an empty one); with ``nodes``, the pair
    ``(data, root node)`` for callers that want each value's line.

    Bad YAML, a duplicate key, an unbuildable scalar, deep nesting, a value that contains itself, more than
    :data:`MAX_YAML_VALUES` values after aliases and lone surrogates raise :class:`YAMLProblem` with the line.
    """
    loader = None
    try:
        loader = _StrictLoader(text)  # checks every character of the text already
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = exc.problem or exc.context or "cannot be parsed"
        raise YAMLProblem(f"invalid YAML: {reason}", mark.line + 1 if mark is not None else None) from exc
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else None
        raise YAMLProblem(f"invalid YAML: the character {exc.character!a} is not allowed", line) from exc
    except yaml.YAMLError as exc:
        raise YAMLProblem(f"invalid YAML: {exc}") from exc
    except RecursionError as exc:  # a chain of thousands of '<<' merges
        raise YAMLProblem("invalid YAML: nested too deeply") from exc
    finally:
        if loader is not None:
            loader.dispose()
    problem = value_problem(data, max_values=MAX_YAML_VALUES)
    if problem is not None:
        raise YAMLProblem(f"invalid YAML: {problem}")
    return (data, node) if nodes else data


#: Builds the error a reader raises from a reason, the file and the line (None: not known).
ErrorFactory = Callable[[str, Path, "int | None"], CsbotError]


def config_error(reason: str, path: Path, line: int | None = None) -> ConfigError:
    """A :class:`ConfigError` reading ``path:line: reason`` (or ``path: reason``)."""
    where = f"{path}:{line}" if line is not None else str(path)
    return ConfigError(f"{where}: {reason}")


def read_yaml(path: str | Path, error: ErrorFactory = config_error, *, nodes: bool = False,
              what: str = "config file") -> Any:
    """The strictly parsed YAML of ``path`` (see :func:`parse_yaml`); the one YAML reader of csbot.

    A missing file, text that is not UTF-8 (a byte-order mark is fine), bad YAML, a duplicate key and the rest
    are raised as ``error(reason, path, line)``: a :class:`ConfigError` naming the file and line by default;
    data readers pass :class:`~csbot.errors.DataError`.
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} not found", path, None)
    try:
        text = read_text(path)
    except DataError as exc:
        raise error(exc.reason, path, exc.line) from exc
    try:
        return parse_yaml(text, nodes=nodes)
    except YAMLProblem as exc:
        raise error(exc.reason, path, exc.line) from exc


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A config file as a mapping of sections (an empty file, or one of comments only, is an empty mapping:
    every section keeps its defaults)."""
    data = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file is a mapping of sections (nlu:, sessions:, bot: ...)")
    return data


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean NAME?"`` for the choice closest to a misspelt ``word``, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def _model_of(annotation: Any) -> Any:
    """The pydantic model an optional annotation holds (``Model | None``), or the annotation itself."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
    return annotation


def field_names(model: Any, loc: Sequence[Any]) -> list[str]:
    """The keys allowed in the mapping at ``loc`` (a pydantic error location) below ``model``; empty when unknown.

    Follows nested models, and the values of ``dict[str, Model]`` and ``list[Model]`` fields.
    """
    current = model
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = _model_of(field.annotation)
            continue
        origin = typing.get_origin(current)
        args = typing.get_args(current)
        if origin is dict and len(args) == 2:
            current = _model_of(args[1])
        elif origin is list and args:
            current = _model_of(args[0])
        else:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


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
                     prefix: str = "", model: Any = None) -> ConfigError:
    """One :class:`ConfigError` listing each invalid key of ``exc`` as ``where: dotted.key: problem``.

    Keys set by a flag (in ``overridden``) are reported as options, not as lines of the file. With the
    ``model`` that was validated, an unknown key gets a did-you-mean: ``sesions: unknown section; did you mean
    sessions?`` (a top-level key is a section).
    """
    problems = []
    for err in exc.errors():
        loc = list(err["loc"])
        key = ".".join(str(p) for p in (prefix.split(".") if prefix else []) + loc)
        origin = "option" if overridden and key in overridden else where
        problem = _describe(err)
        if err.get("type") == "extra_forbidden" and loc:
            if not prefix and len(loc) == 1:
                problem = "unknown section"
            if model is not None:
                problem += did_you_mean(str(loc[-1]), field_names(model, loc[:-1]))
        problems.append(f"{origin}: {key or '(top level)'}: {problem}")
    return ConfigError("; ".join(problems))


def validated(model: type[BaseModel], values: Mapping[str, Any], where: str, prefix: str = "") -> Any:
    """``model(**values)``, a validation failure turned into a :class:`ConfigError` naming each key."""
    try:
        return model(**values)
    except ValidationError as exc:
        raise validation_error(exc, where, prefix=prefix, model=model) from exc


__all__ = [
    "MAX_YAML_VALUES",
    "YAMLProblem",
    "apply_overrides",
    "config_error",
    "did_you_mean",
    "field_names",
    "parse_yaml",
    "read_config_file",
    "read_yaml",
    "validated",
    "validation_error",
]
