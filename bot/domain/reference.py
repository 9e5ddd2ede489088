"""The domain file's reference, and the ``bot:`` config section's, as Markdown generated from their pydantic models.

Every key, its type, its default and its ``description`` come from :mod:`bot.domain.schema` and
:class:`bot.config.BotConfig`, so the guide cannot drift from the code: ``docs/build-your-bot.md`` holds the output
between marker comments, a test compares the two, and this refreshes it::

    python -m bot.domain.reference --write docs/build-your-bot.md    # rewrite the marked blocks
    python -m bot.domain.reference --check docs/build-your-bot.md    # exit 1 when they are out of date
    python -m bot.domain.reference                                    # print the domain reference
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from bot.config import BotConfig
from bot.domain.schema import ButtonSpec, Domain, HandoffSpec, IntentSpec, SlotSpec, Thresholds, VariantSpec

#: Where each model's keys are written in a domain file, in the order the reference lists them.
DOMAIN_SECTIONS: list[tuple[str, type[BaseModel]]] = [
    ("(top level)", Domain),
    ("thresholds", Thresholds),
    ("handoff", HandoffSpec),
    ("slots.<name>", SlotSpec),
    ("intents.<name>", IntentSpec),
    ("templates.<name>[]", VariantSpec),
    ("templates.<name>[].buttons[]", ButtonSpec),
]

#: The meaning of keys whose model gives no ``description`` (a key added without one is still listed).
MEANINGS: dict[tuple[type[BaseModel], str], str] = {
    (Domain, "version"): "the domain format's version",
    (Domain, "action_timeout_seconds"): "an action (or the hand-over hook) slower than this fails: the customer "
                                        "gets the action_failed template",
    (Domain, "thresholds"): "confidence levels (below)",
    (Domain, "handoff"): "when a person takes over (below)",
    (Domain, "slots"): "the values intents ask for, by name (below)",
    (Domain, "intents"): "what the bot does with each intent the model knows, by name (below)",
    (Domain, "templates"): "answers by name, each a list of variants picked at random (below)",
    (SlotSpec, "type"): "how a value is recognised in a bare reply and checked",
    (IntentSpec, "required_slots"): "slots asked for, in order, before the intent is answered",
    (HandoffSpec, "template"): "the template said when a person takes over",
    (VariantSpec, "text"): "the message; {slot} and {variable} placeholders are filled",
    (VariantSpec, "buttons"): "quick replies (below)",
    (ButtonSpec, "title"): "the button's label",
    (ButtonSpec, "payload"): "sent back as the customer's message (default: the title)",
    (BotConfig, "domain"): "the domain file",
    (BotConfig, "nlu_data"): "NLU training files (any format `csbot train --data` reads)",
    (BotConfig, "qa_data"): "Q&A files the index is built from",
    (BotConfig, "model_dir"): "the NLU model: trained here by `csbot chat` / `csbot prepare` when missing or out of date",
    (BotConfig, "index_dir"): "the Q&A index: built here the same way",
}

#: How a nested model is named in the type column (its keys are in its own table).
MODEL_WORDS: dict[type[BaseModel], str] = {
    Thresholds: "mapping (thresholds)", HandoffSpec: "mapping (handoff)", SlotSpec: "slot",
    IntentSpec: "intent", VariantSpec: "variant", ButtonSpec: "button",
}

DOMAIN_MARKERS = ("<!-- domain-reference:start -->", "<!-- domain-reference:end -->")
BOT_CONFIG_MARKERS = ("<!-- bot-config-reference:start -->", "<!-- bot-config-reference:end -->")


def type_name(annotation: Any) -> str:
    """A field's type in words: ``text``, ``number``, ``one of: a, b``, ``list of text``, ``text or null``..."""
    if annotation is type(None):
        return "null"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of: " + ", ".join(str(a) for a in args) if len(args) > 1 else str(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in args)
    if origin is list:
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {type_name(args[0])} to {type_name(args[1])}" if args else "mapping"
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return MODEL_WORDS.get(annotation, "mapping")
    return {str: "text", int: "integer", float: "number", bool: "true/false", Any: "any"}.get(annotation,
                                                                                          getattr(annotation, "__name__", str(annotation)))


def default_text(field: Any) -> str:
    """A field's default as it would be written in YAML; ``required`` when it has none."""
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(below)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)) and not value:
        return "[]" if isinstance(value, list) else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def constraints(field: Any) -> str:
    """Bounds a field's value must keep (``≥ 0``, ``≤ 1``, ``at least 1 character``), from its metadata."""
    words = []
    for item in field.metadata:
        for attribute, word in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            if getattr(item, attribute, None) is not None:
                words.append(f"{word} {getattr(item, attribute)}")
        if getattr(item, "min_length", None):
            words.append(f"at least {item.min_length} character{'s' if item.min_length > 1 else ''}")
    return ", ".join(words)


def model_table(model: type[BaseModel]) -> str:
    """One Markdown table of a model's keys: key, type, default, meaning."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        meaning = field.description or MEANINGS.get((model, name), "")
        bounds = constraints(field)
        if bounds:
            meaning = f"{meaning} ({bounds})" if meaning else bounds
        cells = [f"`{name}`", type_name(field.annotation), f"`{default_text(field)}`", meaning]
        rows.append("| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |")
    return "\n".join(rows)


def _doc(model: type[BaseModel]) -> str:
    return " ".join((inspect.getdoc(model) or "").split())


def domain_reference() -> str:
    """The domain file's reference: one table per part of the file, generated from :mod:`bot.domain.schema`."""
    parts = []
    for where, model in DOMAIN_SECTIONS:
        parts.append(f"#### `{where}`\n\n{_doc(model)}\n\n{model_table(model)}")
    return "\n\n".join(parts)


def bot_config_reference() -> str:
    """The ``bot:`` config section's keys, generated from :class:`bot.config.BotConfig`."""
    return f"{_doc(BotConfig)}\n\n{model_table(BotConfig)}"


def blocks() -> dict[tuple[str, str], str]:
    """Each generated block by its markers."""
    return {DOMAIN_MARKERS: domain_reference(), BOT_CONFIG_MARKERS: bot_config_reference()}


def marked_block(text: str, markers: tuple[str, str]) -> str | None:
    """What lies between ``markers`` in ``text`` (stripped), or None when they are missing."""
    start, end = markers
    match = re.search(re.escape(start) + r"(.*?)" + re.escape(end), text, re.DOTALL)
    return match.group(1).strip() if match else None


def refresh(text: str) -> str:
    """``text`` with every marked block replaced by its generated content; a missing marker pair is an error."""
    for (start, end), content in blocks().items():
        if marked_block(text, (start, end)) is None:
            raise ValueError(f"the markers {start} ... {end} are missing")
        text = re.sub(re.escape(start) + r".*?" + re.escape(end),
                      lambda _m, s=start, e=end, c=content: f"{s}\n{c}\n{e}", text, count=1, flags=re.DOTALL)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.domain.reference", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="FILE", help="rewrite the marked blocks of FILE")
    group.add_argument("--check", metavar="FILE", help="exit 1 when FILE's marked blocks are out of date")
    args = parser.parse_args(argv)
    if args.write or args.check:
        path = Path(args.write or args.check)
        text = path.read_text(encoding="utf-8")
        fresh = refresh(text)
        if args.check:
            if fresh != text:
                print(f"{path}: the generated reference is out of date; run python -m bot.domain.reference "
                      f"--write {path}", file=sys.stderr)
                return 1
            return 0
        if fresh != text:
            path.write_text(fresh, encoding="utf-8")
        return 0
    print(domain_reference())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["bot_config_reference", "domain_reference", "marked_block", "refresh"]
