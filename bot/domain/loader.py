"""Reading and checking a domain file: every problem is a :class:`DomainError` naming the file and the key."""

from __future__ import annotations

import inspect
import re
import string
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bot.domain.schema import Domain
from csbot.errors import ConfigError
from csbot.plugins import ImportProblem, import_object

#: Templates the dialogue manager itself uses; a domain may override their wording.
SYSTEM_TEMPLATES = (
    "fallback", "handoff", "handoff_active", "error", "action_failed", "cancelled", "confirm_declined",
    "clarify", "retrieved", "resume",
)
#: Placeholders every template may use besides slots and action variables.
BUILTIN_VARIABLES = frozenset({"answer", "question", "source", "reason", "slot", "intent", "prompt", "topic"})


class DomainError(ConfigError):
    """A domain file is invalid; the message names the file and the key at fault."""

    def __init__(self, path: str | Path, key: str, reason: str) -> None:
        self.path, self.key, self.reason = Path(path), key, reason
        super().__init__(f"{self.path}: {key}: {reason}")


def placeholders(text: str) -> set[str]:
    """The ``{name}`` fields of a template text (format specs and attribute access ignored).

    A positional field (``{}``, which rendering by name cannot fill) comes back as ``""``; unbalanced braces
    raise ``ValueError``.
    """
    names = set()
    for _, field, _, _ in string.Formatter().parse(text):
        if field is not None:
            names.add(re.split(r"[.\[!:]", field, maxsplit=1)[0])
    return names


def _check_fields(text: str, known: set[str], path: str | Path, key: str) -> None:
    """Every field of a template text must be a known slot or variable, and its braces well formed."""
    try:
        fields = placeholders(text)
    except ValueError as exc:
        raise DomainError(path, key, f"invalid template text ({exc}); write a literal brace as '{{{{' or '}}}}'") from exc
    if "" in fields:
        raise DomainError(path, key, "a positional field {} cannot be filled: name it, e.g. {order_id}")
    for field in sorted(fields - known):
        raise DomainError(path, key, f"unknown slot or variable {{{field}}} (declare the slot, or the action's 'provides')")


def import_callable(path: str, setting: str = "action") -> Callable[..., Any]:
    """The callable at ``package.module:name`` (or ``package.module.name``); :class:`ConfigError` otherwise."""
    target = import_object(path, setting)
    if not callable(target):
        raise ImportProblem(setting, f"{path!r} is not callable")
    return target


def load_domain(path: str | Path) -> Domain:
    """Read, validate and check a domain file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: domain file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "file"
        raise DomainError(path, where, f"invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise DomainError(path, "(top level)", "a domain file is a mapping with intents, slots and templates")
    try:
        domain = Domain(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
        raise DomainError(path, key, f"{err['msg']}{more}") from exc
    check_domain(domain, path)
    return domain


def check_domain(domain: Domain, path: str | Path) -> None:
    """What the schema cannot check: references, placeholders, regexes and dotted paths."""
    for name, slot in domain.slots.items():
        if slot.regex is not None:
            try:
                re.compile(slot.regex)
            except re.error as exc:
                raise DomainError(path, f"slots.{name}.regex", f"invalid regular expression: {exc}") from exc
    provided = {v for spec in domain.intents.values() for v in spec.provides}
    known = set(domain.slots) | provided | BUILTIN_VARIABLES
    for name, intent in domain.intents.items():
        for slot in intent.required_slots:
            if slot not in domain.slots:
                raise DomainError(path, f"intents.{name}.required_slots", f"unknown slot {slot!r}")
        if intent.template and intent.template not in domain.templates:
            raise DomainError(path, f"intents.{name}.template", f"no template named {intent.template!r}")
        for alternative in intent.alternatives:
            if alternative not in domain.templates:
                raise DomainError(path, f"intents.{name}.alternatives", f"no template named {alternative!r}")
        if intent.sensitive:
            confirm = intent.confirm or f"confirm_{name}"
            if confirm not in domain.templates:
                raise DomainError(path, f"intents.{name}.confirm",
                                  f"a sensitive intent needs a confirmation template ({confirm!r} is missing)")
        if intent.action:
            _check_callable(intent.action, path, f"intents.{name}.action")
    if domain.handoff.hook:
        _check_callable(domain.handoff.hook, path, "handoff.hook")
    if domain.handoff.template not in domain.templates and domain.handoff.template not in SYSTEM_TEMPLATES:
        raise DomainError(path, "handoff.template", f"no template named {domain.handoff.template!r}")
    for name, variants in domain.templates.items():
        if not variants:
            raise DomainError(path, f"templates.{name}", "a template needs at least one variant")
        for index, variant in enumerate(variants):
            _check_fields(variant.text, known, path, f"templates.{name}[{index}].text")
            for number, button in enumerate(variant.buttons):
                for part in ("title", "payload"):
                    _check_fields(getattr(button, part) or "", known, path,
                                  f"templates.{name}[{index}].buttons[{number}].{part}")
    for name, slot in domain.slots.items():
        _check_fields(slot.prompt, known, path, f"slots.{name}.prompt")
        _check_fields(slot.invalid or "", known, path, f"slots.{name}.invalid")


def _check_callable(dotted: str, path: str | Path, key: str) -> None:
    try:
        target = import_callable(dotted, key)
    except ImportProblem as exc:
        raise DomainError(path, key, exc.reason) from exc
    if not inspect.iscoroutinefunction(target):
        raise DomainError(path, key, f"{dotted!r} must be an async function (async def)")


def check_against_model(domain: Domain, model_intents: Iterable[str], path: str | Path) -> None:
    """Intents and intent templates must be ones the NLU model knows (system templates excepted)."""
    model = set(model_intents)
    for name in domain.intents:
        if name not in model:
            raise DomainError(path, f"intents.{name}", "the NLU model does not know this intent (retrain it or fix the name)")
    referenced = {spec.template for spec in domain.intents.values() if spec.template}
    referenced |= {name for spec in domain.intents.values() for name in spec.alternatives}
    referenced |= {spec.confirm or f"confirm_{n}" for n, spec in domain.intents.items() if spec.sensitive}
    referenced.add(domain.handoff.template)
    for name in domain.templates:
        if name in referenced or name in SYSTEM_TEMPLATES or name.startswith(("confirm_", "ask_")):
            continue
        if name not in model:
            raise DomainError(path, f"templates.{name}",
                              "a template for an intent the NLU model does not know (and no intent uses it)")
