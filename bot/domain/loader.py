"""Reading and checking a domain file: every problem is a :class:`DomainError` naming the file and the key."""

from __future__ import annotations

import importlib.util
import inspect
import logging
import re
import string
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.domain.schema import Domain
from csbot.config import did_you_mean, field_names, read_yaml
from csbot.errors import ConfigError
from csbot.plugins import ImportProblem, import_object

log = logging.getLogger(__name__)

#: Templates the dialogue manager itself uses; a domain may override their wording.
SYSTEM_TEMPLATES = (
    "fallback", "handoff", "handoff_active", "error", "action_failed", "cancelled", "confirm_declined",
    "clarify", "retrieved", "resume", "out_of_scope",
)
#: Placeholders every template may use besides slots and action variables.
BUILTIN_VARIABLES = frozenset({"answer", "question", "source", "reason", "slot", "intent", "prompt", "topic"})


class DomainError(ConfigError):
    """A domain file is invalid; the message names the file and the key at fault."""

    def __init__(self, path: str | Path, key: str, reason: str) -> None:
        self.path, self.key, self.reason = Path(path), key, reason
        super().__init__(f"{self.path}: {key}: {reason}")


def known_names(domain: Domain) -> frozenset[str]:
    """The names a template placeholder may fill: the slots, the actions' ``provides`` and the built-in
    variables. Any other ``{name}`` is sent as written (the loader warns about it)."""
    provided = {name for spec in domain.intents.values() for name in spec.provides}
    return frozenset(set(domain.slots) | provided | BUILTIN_VARIABLES)


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


#: Conversions a template field may carry (``{reason!r}``); ``!x`` would fail only when rendered.
CONVERSIONS = (None, "r", "s", "a")
#: The widest field (and the longest precision) a format spec may ask for: ``{slot:>999999999}`` would build
#: a gigabyte string at every reply.
MAX_FORMAT_WIDTH = 1000
#: Sample values a format spec must work with: slots and built-in variables are text; an action's variables
#: may also be numbers (``{total:.2f}``).
_TEXT_SAMPLES: tuple[Any, ...] = ("",)
_ACTION_SAMPLES: tuple[Any, ...] = ("", 0, 0.0)


def field_problem(field: str, conversion: str | None, spec: str, provided: set[str]) -> str | None:
    """Why one replacement field ``{field!conversion:spec}`` of a template cannot be rendered, or None.

    The rule: a field is a bare name (no ``{a.b}`` attribute or ``{a[0]}`` index access, no positional ``{}``
    or ``{0}``); its conversion is ``!r``, ``!s``, ``!a`` or none; its format spec holds no nested field, asks
    for no width or precision over :data:`MAX_FORMAT_WIDTH`, and formats a text value (or, for a variable an
    action provides, a text or a number), as rendering will.
    """
    shown = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
    shown = shown if len(shown) <= 60 else shown[:56] + "...}"
    if field == "" or field.isdigit():
        return f"a positional field {shown} cannot be filled: name it, e.g. {{order_id}}"
    if re.search(r"[.\[]", field):
        name = re.split(r"[.\[]", field, maxsplit=1)[0]
        return (f"{shown} uses attribute or index access, which templates do not support: "
                f"use a plain slot or variable name such as {{{name}}}")
    if conversion not in CONVERSIONS:
        return f"{shown} has an unknown conversion '!{conversion}' (use !r, !s or !a, or none)"
    if not spec:
        return None
    if "{" in spec or "}" in spec:
        return f"{shown} has a field inside its format spec, which templates do not support"
    if any(len(digits) > 4 or int(digits) > MAX_FORMAT_WIDTH for digits in re.findall(r"\d+", spec)):
        return f"{shown} asks for a width or precision over {MAX_FORMAT_WIDTH}"
    samples = _ACTION_SAMPLES if field in provided and conversion is None else _TEXT_SAMPLES
    reasons = []
    for sample in samples:
        try:
            format(sample, spec)
            return None
        except (ValueError, TypeError) as exc:
            reasons.append(str(exc))
    return f"{shown} has a format spec that cannot render: {reasons[0]}"


def _check_fields(text: str, known: set[str], path: str | Path, key: str, provided: frozenset[str] = frozenset()) -> None:
    """Every field of a template text must render and its braces be well formed (a :class:`DomainError`
    otherwise); a field that names no slot or variable is only warned about: it is sent as written."""
    try:
        fields = [(field, conversion, spec) for _, field, spec, conversion in string.Formatter().parse(text)
                  if field is not None]
    except ValueError as exc:
        raise DomainError(path, key, f"invalid template text ({exc}); write a literal brace as '{{{{' or '}}}}'") from exc
    for field, conversion, spec in fields:
        problem = field_problem(field, conversion, spec or "", set(provided))
        if problem is not None:
            raise DomainError(path, key, problem)
    for field in sorted({field for field, _, _ in fields} - known):
        log.warning("%s: %s: {%s} is not a slot or variable, so it is sent as written; to fill it, declare the "
                    "slot or the action's 'provides'; to mean literal braces, write them doubled: {{%s}}",
                    path, key, field, field)


def import_callable(path: str, setting: str = "action", project_dir: str | Path | None = None) -> Callable[..., Any]:
    """The callable at ``package.module:name`` (or ``package.module.name``); :class:`ConfigError` otherwise.

    With ``project_dir`` (the domain file's folder), a module that lies in that folder (``actions.py`` for
    ``actions:my_action``) is imported from there, without ``PYTHONPATH``; see :func:`load_project_module`.
    """
    if project_dir is not None:
        load_project_module(path, Path(project_dir), setting)
    target = import_object(path, setting)
    if not callable(target):
        raise ImportProblem(setting, f"{path!r} is not callable")
    return target


#: Set on a module :func:`load_project_module` imported from a bot project's folder.
_PROJECT_MARK = "__csbot_project_dir__"


def load_project_module(dotted: str, project_dir: Path, setting: str = "action") -> None:
    """Import the top-level module of ``dotted`` from ``project_dir`` when it lies there (``name.py`` or a package
    ``name/__init__.py``), so a bot project's ``actions.py`` needs no ``PYTHONPATH``; otherwise do nothing.

    The folder is also appended to ``sys.path`` (after everything installed, so it shadows nothing) for the
    module's own imports of its neighbours. A module of that name already imported from elsewhere is kept,
    unless it came from another project's folder (a second bot in the same process): then this one replaces it.
    """
    top = dotted.partition(":")[0].split(".")[0] if ":" in dotted else dotted.rpartition(".")[0].split(".")[0]
    folder = project_dir.resolve()
    source = next((f for f in (folder / f"{top}.py", folder / top / "__init__.py") if f.is_file()), None) if top else None
    if source is None:
        return
    loaded = sys.modules.get(top)
    if loaded is not None:
        if getattr(loaded, _PROJECT_MARK, None) == str(folder) or not hasattr(loaded, _PROJECT_MARK):
            return  # this project's module, or an installed one of the same name (which wins, as it would anyway)
        for name in [n for n in sys.modules if n == top or n.startswith(f"{top}.")]:
            del sys.modules[name]
    if str(folder) not in sys.path:
        sys.path.append(str(folder))
    package = source.name == "__init__.py"
    spec = importlib.util.spec_from_file_location(top, source, submodule_search_locations=[str(source.parent)] if package else None)
    if spec is None or spec.loader is None:
        raise ImportProblem(setting, f"cannot import {dotted!r} from {source}")
    module = importlib.util.module_from_spec(spec)
    setattr(module, _PROJECT_MARK, str(folder))
    sys.modules[top] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # any error raised while the module runs
        del sys.modules[top]
        raise ImportProblem(setting, f"cannot import {dotted!r} from {source}: {exc.__class__.__name__}: {exc}") from exc


def _domain_error(reason: str, path: Path, line: int | None) -> DomainError:
    return DomainError(path, f"line {line}" if line is not None else "(file)", reason)


def load_domain(path: str | Path) -> Domain:
    """Read, validate and check a domain file.

    The file is read by :func:`csbot.config.read_yaml` (UTF-8 only, no key given twice, every problem a
    :class:`DomainError` naming the file and the line or key); an empty file is an error, and so is an unknown
    key (with a did-you-mean).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: domain file not found")
    data = read_yaml(path, _domain_error, what="domain file")
    if data is None or data == {}:
        raise DomainError(path, "(top level)", "the domain file is empty; it needs intents, slots and templates")
    if not isinstance(data, dict):
        raise DomainError(path, "(top level)", "a domain file is a mapping with intents, slots and templates")
    from bot.rasa.detect import looks_like_rasa, rasa_hint

    if looks_like_rasa(data, "domain"):
        raise DomainError(path, "(top level)", rasa_hint("domain"))
    try:
        domain = Domain.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
        hint = ""
        if err.get("type") == "extra_forbidden" and err["loc"]:
            hint = did_you_mean(str(err["loc"][-1]), field_names(Domain, err["loc"][:-1]))
        raise DomainError(path, key, f"{err['msg']}{hint}{more}") from exc
    check_domain(domain, path)
    return domain


def check_domain(domain: Domain, path: str | Path) -> None:
    """What the schema cannot check: references, placeholders, regexes and dotted paths."""
    for name, slot in domain.slots.items():
        if slot.regex is not None:
            try:
                re.compile(slot.regex)
            except (re.error, OverflowError, RecursionError) as exc:  # huge repeat counts, endless nesting
                reason = str(exc) if not isinstance(exc, RecursionError) else "nested too deeply"
                raise DomainError(path, f"slots.{name}.regex", f"invalid regular expression: {reason}") from exc
    provided = frozenset(v for spec in domain.intents.values() for v in spec.provides)
    known = set(known_names(domain))
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
            _check_fields(variant.text, known, path, f"templates.{name}[{index}].text", provided)
            if variant.image:
                _check_fields(variant.image, known, path, f"templates.{name}[{index}].image", provided)
            for number, button in enumerate(variant.buttons):
                for part in ("title", "payload"):
                    _check_fields(getattr(button, part) or "", known, path,
                                  f"templates.{name}[{index}].buttons[{number}].{part}", provided)
    for name, slot in domain.slots.items():
        _check_fields(slot.prompt, known, path, f"slots.{name}.prompt", provided)
        _check_fields(slot.invalid or "", known, path, f"slots.{name}.invalid", provided)


def _check_callable(dotted: str, path: str | Path, key: str) -> None:
    try:
        target = import_callable(dotted, key, project_dir=Path(path).parent)
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
