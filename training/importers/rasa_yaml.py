"""Rasa NLU training data in YAML (``nlu:`` items with ``intent`` and an ``examples`` block), one file or a folder.

A folder (Rasa's ``data/`` or ``data/nlu/``) is read whole: every ``*.yml``/``*.yaml`` under it with a
top-level ``nlu:`` key, in path order; stories, rules and responses files beside them are passed over.

As training data, a retrieval intent (``faq/ask_fees``) is labelled with its base intent (``faq``) and
Rasa's out-of-scope sub-intents (``out_of_scope/weather``) with ``out_of_scope``, csbot's out-of-scope label.
Synonym, regex and lookup items, and entity values mapped to another value (``[cc]{"entity": "card",
"value": "credit"}``), are no training examples: :func:`read_rasa_nlu` collects them with the examples
(as Rasa wrote them) and the files' ``responses:``, and :meth:`RasaNlu.patterns` turns them into the
entity patterns file csbot's extractors read (``csbot init --from-rasa`` writes it).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
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
_SUFFIXES = (".yml", ".yaml")

#: Rasa's out-of-scope intent (``nlu.labels.OOS_LABELS`` holds it); its sub-intents are out of scope too.
OUT_OF_SCOPE = "out_of_scope"


def base_intent(name: str) -> str:
    """The intent csbot trains for a Rasa intent: a retrieval intent ``faq/ask_fees`` is ``faq``."""
    return name.split("/", 1)[0].strip()


def nlu_files(path: Path) -> list[Path]:
    """``path`` itself, or every YAML file under the folder ``path`` with a top-level ``nlu:`` key, sorted."""
    if not path.is_dir():
        return [path]
    found = sorted(p for p in path.rglob("*") if p.is_file() and has_suffix(p, *_SUFFIXES))
    return [p for p in found if _NLU_KEY.search(read_text(p))]


@dataclass
class RasaNlu:
    """What Rasa NLU files hold besides examples: synonyms, regexes, lookups and responses.

    ``examples`` keep Rasa's intent names (``faq/ask_fees``); :meth:`training_examples` gives csbot's.
    ``synonyms`` maps a canonical value to the variants that mean it (synonym items and value mappings).
    """

    examples: list[Example] = field(default_factory=list)
    #: the file and line of each example, in the same order
    origins: list[tuple[Path, int]] = field(default_factory=list)
    synonyms: dict[str, list[str]] = field(default_factory=dict)
    regexes: dict[str, list[str]] = field(default_factory=dict)
    lookups: dict[str, list[str]] = field(default_factory=dict)
    #: ``responses:`` found in the NLU files (Rasa allows them there), as written
    responses: dict[str, Any] = field(default_factory=dict)
    #: entity roles and groups met (csbot has neither; the entity keeps its name)
    roles: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def add_synonym(self, canonical: str, variant: str) -> None:
        """Record that ``variant`` means ``canonical`` (once; a variant equal to its value is no synonym)."""
        if variant.casefold() == canonical.casefold():
            return
        variants = self.synonyms.setdefault(canonical, [])
        if variant not in variants:
            variants.append(variant)

    def training_examples(self) -> list[Example]:
        """The examples with csbot's intents: a retrieval intent's base, ``out_of_scope/*`` as out of scope."""
        return [Example(e.text, base_intent(e.intent), list(e.entities)) for e in self.examples]

    def patterns(self) -> dict[str, Any] | None:
        """The entity patterns document (``entities: {name: {regex, lookup}}``, ``synonyms: {value: [variants]}``),
        or None when there is nothing to write."""
        entities: dict[str, dict[str, list[str]]] = {}
        for name, patterns in self.regexes.items():
            entities.setdefault(name, {})["regex"] = list(patterns)
        for name, values in self.lookups.items():
            entities.setdefault(name, {})["lookup"] = list(values)
        document: dict[str, Any] = {}
        if entities:
            document["entities"] = entities
        if self.synonyms:
            document["synonyms"] = {value: list(variants) for value, variants in self.synonyms.items()}
        return document or None


def read_rasa_nlu(path: str | Path) -> RasaNlu:
    """Everything in a Rasa NLU file, or in every NLU file of a folder; errors name the file and line."""
    path = Path(path)
    if not path.exists():
        raise DataError("no such file or directory", path)
    files = nlu_files(path)
    if not files:
        raise DataError("no Rasa NLU file (a YAML file with a top-level 'nlu:' key) in this folder", path)
    result = RasaNlu()
    for file in files:
        _read_file(file, result)
    return result


class AnnotationError(ValueError):
    """Entity markup inside one example line is broken (internal; turned into DataError with the line)."""


class RasaYamlImporter(Importer):
    """Rasa NLU YAML: ``[value](entity)`` markup is removed and becomes character-offset entities."""

    name = "rasa_yaml"

    def sniff(self, path: Path) -> bool:
        """A ``*.yml``/``*.yaml`` file with a top-level ``nlu:`` key, or a folder holding one."""
        if path.is_dir():
            return bool(nlu_files(path))
        return has_suffix(path, *_SUFFIXES) and bool(_NLU_KEY.search(read_text(path)))

    def load(self, path: Path, selector: str | None, options: Mapping[str, Any]) -> list[Example]:
        """Read every intent item's examples, of one file or of every NLU file in a folder.

        Synonym, lookup and regex items are noted and left out (they are no examples); retrieval intents are
        labelled with their base intent. Each file is read by :func:`csbot.config.parse_yaml`, the strict
        reader every YAML file goes through: a second ``nlu:`` block or an item with two ``intent:`` keys is
        an error naming the line, not a silent choice of one of them.
        """
        data = read_rasa_nlu(path)
        for kind, named in (("synonym", data.synonyms), ("regex", data.regexes), ("lookup", data.lookups)):
            if named:
                logger.info("%s: %d Rasa %s item(s) are no training examples; csbot applies them from an entity "
                            "patterns file (csbot init --from-rasa writes one)", path, len(named), kind)
        return data.training_examples()


def _read_file(path: Path, into: RasaNlu) -> None:
    """Add one NLU file's examples, synonyms, regexes, lookups and responses to ``into``."""
    source = read_text(path)
    try:
        data, root = parse_yaml(source, nodes=True)
    except YAMLProblem as exc:
        raise DataError(exc.reason, path, exc.line) from exc
    nlu = _nlu_node(root, path)
    lines = source.splitlines()
    into.files.append(path)
    for item in nlu.value:
        _item(item, path, lines, into)
    responses = data.get("responses") if isinstance(data, dict) else None
    if responses is not None:
        if not isinstance(responses, dict):
            raise DataError("'responses:' must be a mapping of response names", path, _line(_get(root, "responses")))
        for name, variants in responses.items():
            if name in into.responses:
                raise DataError(f"response {name!r} is given twice", path, _line(_get(root, "responses")))
            into.responses[str(name)] = variants


def _nlu_node(root: yaml.Node | None, path: Path) -> yaml.SequenceNode:
    if root is None:
        raise DataError("the file is empty; expected a top-level 'nlu:' list", path, 1)
    if not isinstance(root, yaml.MappingNode):
        raise DataError("expected a mapping with an 'nlu:' key at the top", path, _line(root))
    nlu = _get(root, "nlu")
    if nlu is None:
        raise DataError("no top-level 'nlu:' key", path, _line(root))
    if not isinstance(nlu, yaml.SequenceNode):
        raise DataError("'nlu:' must be a list of items", path, _line(nlu))
    return nlu


def _item(item: yaml.Node, path: Path, lines: list[str], into: RasaNlu) -> None:
    if not isinstance(item, yaml.MappingNode):
        raise DataError("each 'nlu:' item must be a mapping (e.g. '- intent: NAME')", path, _line(item))
    intent = _get(item, "intent")
    if intent is None:
        for kind in _IGNORED_KINDS:
            named = _get(item, kind)
            if named is not None:
                _pattern_item(kind, named, item, path, lines, into)
                return
        keys = ", ".join(str(_scalar(k)) for k, _ in item.value)
        raise DataError(f"item has none of intent, {', '.join(_IGNORED_KINDS)} (keys: {keys})", path, _line(item))
    if not isinstance(intent, yaml.ScalarNode) or not intent.value.strip():
        raise DataError("'intent' must be a non-empty name", path, _line(intent))
    examples_node = _get(item, "examples")
    if examples_node is None:
        raise DataError(f"intent {intent.value!r} has no 'examples'", path, _line(item))
    name = intent.value.strip()
    if not base_intent(name):
        raise DataError(f"intent {name!r} has no name before its '/'", path, _line(intent))
    for text, line in _example_lines(examples_node, path, lines):
        try:
            clean, entities, values, extras = _parse(text)
        except AnnotationError as exc:
            raise DataError(f"broken entity annotation in {text!r}: {exc}", path, line) from None
        if not clean.strip():
            raise DataError("empty example", path, line)
        for entity, value in zip(entities, values, strict=True):
            if value is not None:
                into.add_synonym(value, entity.value)
        into.roles.extend(extras)
        into.examples.append(check_spans(Example(clean, name, entities), path, line))
        into.origins.append((path, line))


def _pattern_item(kind: str, named: yaml.Node, item: yaml.MappingNode, path: Path, lines: list[str],
                  into: RasaNlu) -> None:
    """A synonym, regex or lookup item: its values go to ``into``, none of them is a training example."""
    if not isinstance(named, yaml.ScalarNode) or not str(named.value).strip():
        raise DataError(f"'{kind}' must be a non-empty name", path, _line(named))
    name = str(named.value).strip()
    logger.info("%s:%d: ignoring %s %r as training examples (csbot applies Rasa %s items from an entity "
                "patterns file, which csbot init --from-rasa writes)", path, _line(item), kind, name, kind)
    examples_node = _get(item, "examples")
    if examples_node is None:
        raise DataError(f"{kind} {name!r} has no 'examples'", path, _line(item))
    values = [text for text, _ in _example_lines(examples_node, path, lines) if text]
    if kind == "regex":
        for value, (_, line) in zip(values, _example_lines(examples_node, path, lines), strict=False):
            try:
                re.compile(value)
            except re.error as exc:
                raise DataError(f"regex {name!r}: {value!r} is not a valid regular expression ({exc})",
                                path, line) from None
        into.regexes.setdefault(name, []).extend(v for v in values if v not in into.regexes.get(name, []))
    elif kind == "lookup":
        into.lookups.setdefault(name, []).extend(v for v in values if v not in into.lookups.get(name, []))
    else:
        for value in values:
            into.add_synonym(name, value)


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
    entity's value is always the surface text (a mapped value is a synonym: see :func:`read_rasa_nlu`).
    Brackets not followed by ``(`` or ``{`` stay as text.
    """
    text, entities, _, _ = _parse(line)
    return text, entities


def _parse(line: str) -> tuple[str, list[EntitySpan], list[str | None], list[str]]:
    """:func:`parse_annotated` plus, per entity, the value it is mapped to (None: its own text), and the
    roles and groups met (``entity.role=x``)."""
    parts: list[str] = []
    length = 0
    entities: list[EntitySpan] = []
    values: list[str | None] = []
    extras: list[str] = []
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
        value: str | None = None
        if marker == "(":
            end = line.find(")", close + 2)
            if end == -1:
                raise AnnotationError(f"'(' at position {close + 2} is never closed by ')'")
            entity, _, mapped = line[close + 2 : end].partition(":")
            entity = entity.strip()
            if not entity:
                raise AnnotationError(f"no entity name in '({line[close + 2 : end]})'")
            value = mapped.strip() or None
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
            mapped = spec.get("value")
            value = str(mapped).strip() if mapped is not None and str(mapped).strip() else None
            extras.extend(f"{entity}.{key}={spec[key]}" for key in ("role", "group") if spec.get(key))
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
        values.append(value if value != surface else None)
        parts.append(surface)
        length += len(surface)
        index = after
    return "".join(parts), entities, values, extras
