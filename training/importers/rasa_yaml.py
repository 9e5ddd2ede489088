"""Rasa NLU training data in YAML (``nlu:`` items with ``intent`` and an ``examples`` block)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from csbot.config import YAMLProblem, parse_yaml
from csbot.datafiles import has_suffix, read_text
from csbot.errors import DataError
from nlu.schema import EntitySpan, Example

from .base import Importer, check_spans

logger = logging.getLogger(__name__)

_NLU_KEY = re.compile(r"^nlu\s*:", re.MULTILINE)
_IGNORED_KINDS = ("synonym", "lookup", "regex")
_DECODER = json.JSONDecoder()


class AnnotationError(ValueError):
    """Entity markup inside one example line is broken (internal; turned into DataError with the line)."""


class RasaYamlImporter(Importer):
    """Rasa NLU YAML: ``[value](entity)`` markup is removed and becomes character-offset entities."""

    name = "rasa_yaml"

    def sniff(self, path: Path) -> bool:
        """A ``*.yml``/``*.yaml`` file with a top-level ``nlu:`` key."""
        return has_suffix(path, ".yml", ".yaml") and bool(_NLU_KEY.search(read_text(path)))

    def load(self, path: Path, selector: str | None, options: Mapping[str, Any]) -> list[Example]:
        """Read every intent item's examples; synonym, lookup and regex items are noted and skipped.

        The file is read by :func:`csbot.config.parse_yaml`, the strict reader every YAML file goes through: a
        second ``nlu:`` block or an item with two ``intent:`` keys is an error naming the line, not a silent
        choice of one of them.
        """
        source = read_text(path)
        try:
            _, root = parse_yaml(source, nodes=True)
        except YAMLProblem as exc:
            raise DataError(exc.reason, path, exc.line) from exc
        if root is None:
            raise DataError("the file is empty; expected a top-level 'nlu:' list", path, 1)
        if not isinstance(root, yaml.MappingNode):
            raise DataError("expected a mapping with an 'nlu:' key at the top", path, _line(root))
        nlu = _get(root, "nlu")
        if nlu is None:
            raise DataError("no top-level 'nlu:' key", path, _line(root))
        if not isinstance(nlu, yaml.SequenceNode):
            raise DataError("'nlu:' must be a list of items", path, _line(nlu))
        lines = source.splitlines()
        examples: list[Example] = []
        for item in nlu.value:
            examples.extend(self._item(item, path, lines))
        return examples

    def _item(self, item: yaml.Node, path: Path, lines: list[str]) -> list[Example]:
        if not isinstance(item, yaml.MappingNode):
            raise DataError("each 'nlu:' item must be a mapping (e.g. '- intent: NAME')", path, _line(item))
        intent = _get(item, "intent")
        if intent is None:
            for kind in _IGNORED_KINDS:
                named = _get(item, kind)
                if named is not None:
                    logger.info(
                        "%s:%d: ignoring %s %r (csbot does not use Rasa %s items)",
                        path,
                        _line(item),
                        kind,
                        _scalar(named),
                        kind,
                    )
                    return []
            keys = ", ".join(str(_scalar(k)) for k, _ in item.value)
            raise DataError(
                f"item has none of intent, {', '.join(_IGNORED_KINDS)} (keys: {keys})", path, _line(item)
            )
        if not isinstance(intent, yaml.ScalarNode) or not intent.value.strip():
            raise DataError("'intent' must be a non-empty name", path, _line(intent))
        examples_node = _get(item, "examples")
        if examples_node is None:
            raise DataError(f"intent {intent.value!r} has no 'examples'", path, _line(item))
        name = intent.value.strip()
        result = []
        for text, line in _example_lines(examples_node, path, lines):
            try:
                clean, entities = parse_annotated(text)
            except AnnotationError as exc:
                raise DataError(f"broken entity annotation in {text!r}: {exc}", path, line) from None
            if not clean.strip():
                raise DataError("empty example", path, line)
            result.append(check_spans(Example(clean, name, entities), path, line))
        return result


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _scalar(node: yaml.Node) -> Any:
    return node.value if isinstance(node, yaml.ScalarNode) else f"<{node.id}>"


def _get(mapping: yaml.MappingNode, key: str) -> yaml.Node | None:
    for key_node, value_node in mapping.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return value_node
    return None


def _example_lines(node: yaml.Node, path: Path, lines: list[str]) -> Iterator[tuple[str, int]]:
    """Each example's text with its 1-based source line, from a ``|`` block or a YAML list."""
    if isinstance(node, yaml.SequenceNode):  # examples as a list of strings or of {text: ...}
        for entry in node.value:
            text_node = _get(entry, "text") if isinstance(entry, yaml.MappingNode) else entry
            if not isinstance(text_node, yaml.ScalarNode):
                raise DataError("an example must be a string or have a 'text'", path, _line(entry))
            yield text_node.value.strip(), _line(text_node)
        return
    if not isinstance(node, yaml.ScalarNode):
        raise DataError("'examples' must be a block of '- example' lines", path, _line(node))
    first = node.start_mark.line  # 0-based; a '|' block's content starts on the next line
    for offset, raw in enumerate(node.value.splitlines()):
        if not raw.strip():
            continue
        if node.style == "|":
            line = first + 2 + offset
        else:  # folded or quoted: find the line in the source, best effort
            line = next((n + 1 for n in range(first, len(lines)) if raw.strip() in lines[n]), first + 1)
        stripped = raw.strip()
        if not stripped.startswith("-"):
            raise DataError(f"an example line must start with '- ' (got {stripped!r})", path, line)
        yield stripped[1:].strip(), line


def parse_annotated(line: str) -> tuple[str, list[EntitySpan]]:
    """Remove Rasa entity markup from ``line``; return the clean text and entities with offsets into it.

    ``[value](entity)``, ``[value](entity:synonym)`` and ``[value]{"entity": ..}`` are understood; the
    entity's value is always the surface text. Brackets not followed by ``(`` or ``{`` stay as text.
    """
    parts: list[str] = []
    length = 0
    entities: list[EntitySpan] = []
    index = 0
    close = -1
    while index < len(line):
        char = line[index]
        if char != "[":
            parts.append(char)
            length += 1
            index += 1
            continue
        if close <= index:  # else the ']' found for an earlier plain '[' is this one's too (linear, not quadratic)
            close = line.find("]", index + 1)
        if close == -1:
            raise AnnotationError(f"'[' at position {index + 1} is never closed by ']'")
        surface = line[index + 1 : close]
        marker = line[close + 1 : close + 2]
        if marker == "(":
            end = line.find(")", close + 2)
            if end == -1:
                raise AnnotationError(f"'(' at position {close + 2} is never closed by ')'")
            entity = line[close + 2 : end].split(":", 1)[0].strip()
            if not entity:
                raise AnnotationError(f"no entity name in '({line[close + 2 : end]})'")
            after = end + 1
        elif marker == "{":
            try:
                spec, after = _DECODER.raw_decode(line, close + 1)
            except json.JSONDecodeError as exc:
                raise AnnotationError(f"the '{{...}}' after ']' is not valid JSON ({exc.msg})") from None
            entity = spec.get("entity") if isinstance(spec, dict) else None
            if not isinstance(entity, str) or not entity.strip():
                raise AnnotationError("the '{...}' after ']' has no \"entity\" name")
            entity = entity.strip()
        else:  # plain brackets, not an annotation
            parts.append(char)
            length += 1
            index += 1
            continue
        if "[" in surface:
            raise AnnotationError(f"'[' at position {index + 1} is not closed before the next '['")
        if not surface:
            raise AnnotationError(f"empty entity text '[]' at position {index + 1}")
        entities.append(EntitySpan(length, length + len(surface), entity, surface))
        parts.append(surface)
        length += len(surface)
        index = after
    return "".join(parts), entities
