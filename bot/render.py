"""Rendering templates: a variant other than the last one used, placeholders filled, buttons attached.

Only the domain's own texts (templates, prompts, ``invalid`` texts: checked when the domain is loaded) are
ever read as templates. Slot values, action results and reasons, which may hold what a customer typed,
are data: :func:`fill` puts them in as text and never parses them, and a placeholder may only name a value
(``{order_id}``, with an optional conversion and format spec), never reach into one (``{slot.__class__}``,
``{items[0]}``).
"""

from __future__ import annotations

import logging
import random
import re
import string
from collections.abc import Container, Mapping
from typing import Any

from bot.domain.loader import known_names
from bot.domain.schema import Domain
from bot.messages import Button, OutgoingMessage
from bot.sessions.state import SessionState

log = logging.getLogger(__name__)

#: Wording of the system templates when a domain does not define them.
DEFAULT_TEXTS = {
    "fallback": "Sorry, I didn't get that. Could you rephrase it?",
    "handoff": "I'm handing you over to a colleague, who will reply here shortly.",
    "handoff_active": "",
    "error": "Sorry, something went wrong on our side. Please try again in a moment.",
    "action_failed": "Sorry, I couldn't complete that just now. Please try again in a moment, or ask for a person.",
    "cancelled": "Okay, I've stopped that.",
    "confirm_declined": "Okay, I won't do that.",
    "clarify": "Which of these did you mean?",
    "retrieved": "{answer}",
    "resume": "Back to what we were doing:",
    "session_reset": "Sorry, I lost track of our conversation, so let's start again.",
    "invalid_value": "Sorry, {reason}.",
}

_PARSER = string.Formatter()
#: A format spec with a number this long (a width or precision of 10,000 or more) would build a huge text.
_HUGE_SPEC = re.compile(r"\d{5,}")
#: A field that reaches into a value or is positional: always left blank, never spelled back.
_REFERENCE = re.compile(r"^$|^\d+$|[.\[]")


def fill(template: str, values: Mapping[str, Any], known: Container[str] | None = None) -> str:
    """``template`` with each ``{name}`` replaced by ``values[name]``, as text.

    The values are never parsed, so braces in them are just characters. With ``known`` (the names a
    placeholder may fill: slots and variables), a field naming something else (``{Order Number}``, pasted
    from a helpdesk) is sent exactly as written, as the domain loader warned. A field that is not a name
    (positional, attribute or index access), or a known name with no value, is left blank, and a format spec
    that does not suit its value (or would be huge, or holds a nested field) is ignored; each with a warning.
    A template that is not a valid format string (the loader refuses those) is sent as it is written.
    """
    try:
        parts = list(_PARSER.parse(template))
    except ValueError as exc:
        log.warning("template text %r is not a valid format string (%s); sent as written", template[:80], exc)
        return template
    out: list[str] = []
    for literal, name, spec, conversion in parts:
        out.append(literal)
        if name is None:
            continue
        if known is not None and name not in values and name not in known and not _REFERENCE.search(name):
            out.append(_as_written(name, conversion, spec))
            continue
        if not name.isidentifier():
            log.warning("template placeholder {%s} is not a plain name; left blank", name)
            continue
        if name not in values:
            log.warning("template placeholder {%s} has no value", name)
            continue
        out.append(_format(name, values[name], spec or "", conversion))
    return "".join(out)


def _as_written(name: str, conversion: str | None, spec: str | None) -> str:
    """A replacement field spelled back as the template wrote it."""
    return "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"


def _format(name: str, value: Any, spec: str, conversion: str | None) -> str:
    if conversion == "r":
        value = repr(value)
    elif conversion == "a":
        value = ascii(value)
    elif conversion == "s":
        value = str(value)
    if spec and ("{" in spec or _HUGE_SPEC.search(spec)):
        log.warning("template placeholder {%s} has a format spec %r that is not used", name, spec)
        spec = ""
    try:
        return format(value, spec)
    except (TypeError, ValueError, OverflowError) as exc:
        log.warning("template placeholder {%s}: format spec %r does not suit the value (%s)", name, spec, exc)
        return str(value)


class Renderer:
    """Renders a domain's templates for a session."""

    def __init__(self, domain: Domain, rng: random.Random | None = None) -> None:
        self.domain = domain
        self.rng = rng or random.Random()
        #: what a placeholder may fill; any other ``{name}`` is sent as written
        self.known = known_names(domain)

    def has(self, name: str) -> bool:
        return name in self.domain.templates or name in DEFAULT_TEXTS

    def render(self, name: str, state: SessionState, variables: dict[str, Any] | None = None) -> OutgoingMessage:
        """One message from template ``name`` (never the same variant twice in a row when there are several)."""
        values = {**{k: _show(v) for k, v in state.slots.items()},
                  **{k: _show(v) for k, v in (variables or {}).items()}}
        variants = self.domain.templates.get(name)
        if not variants:
            return OutgoingMessage(fill(DEFAULT_TEXTS.get(name, name), values, self.known))
        choices = list(range(len(variants)))
        last = state.variants.get(name)
        if len(choices) > 1 and last in choices:
            choices.remove(last)
        index = self.rng.choice(choices)
        state.variants[name] = index
        variant = variants[index]
        buttons = [Button(fill(b.title, values, self.known), fill(b.payload or b.title, values, self.known))
                   for b in variant.buttons]
        image = fill(variant.image, values, self.known) if variant.image else None
        return OutgoingMessage(fill(variant.text, values, self.known), buttons, image=image, attachment=variant.attachment,
                               custom=variant.custom)

    def text(self, text: str, state: SessionState, variables: dict[str, Any] | None = None) -> OutgoingMessage:
        """A message from one of the domain's own texts (a slot's prompt or ``invalid`` text); ``variables``
        and the slots are filled in as data. Never pass a customer's words as ``text``: pass them in
        ``variables`` (see :func:`fill`)."""
        values = {**{k: _show(v) for k, v in state.slots.items()}, **(variables or {})}
        return OutgoingMessage(fill(text, values, self.known))


def _show(value: Any) -> Any:
    return ", ".join(map(str, value)) if isinstance(value, list) else value
