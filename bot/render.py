"""Rendering templates: a variant other than the last one used, placeholders filled, buttons attached."""

from __future__ import annotations

import logging
import random
import string
from typing import Any

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
}


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        log.warning("template placeholder {%s} has no value", key)
        return ""


class Renderer:
    """Renders a domain's templates for a session."""

    def __init__(self, domain: Domain, rng: random.Random | None = None) -> None:
        self.domain = domain
        self.rng = rng or random.Random()

    def has(self, name: str) -> bool:
        return name in self.domain.templates or name in DEFAULT_TEXTS

    def render(self, name: str, state: SessionState, variables: dict[str, Any] | None = None) -> OutgoingMessage:
        """One message from template ``name`` (never the same variant twice in a row when there are several)."""
        values = _Blank({**{k: _show(v) for k, v in state.slots.items()}, **{k: _show(v) for k, v in (variables or {}).items()}})
        variants = self.domain.templates.get(name)
        if not variants:
            return OutgoingMessage(string.Formatter().vformat(DEFAULT_TEXTS.get(name, name), (), values))
        choices = list(range(len(variants)))
        last = state.variants.get(name)
        if len(choices) > 1 and last in choices:
            choices.remove(last)
        index = self.rng.choice(choices)
        state.variants[name] = index
        variant = variants[index]
        text = string.Formatter().vformat(variant.text, (), values)
        buttons = [Button(string.Formatter().vformat(b.title, (), values),
                          string.Formatter().vformat(b.payload or b.title, (), values)) for b in variant.buttons]
        return OutgoingMessage(text, buttons)

    def text(self, text: str, state: SessionState, variables: dict[str, Any] | None = None) -> OutgoingMessage:
        """A message from a literal template text (slot prompts, invalid-value reasons)."""
        values = _Blank({**{k: _show(v) for k, v in state.slots.items()}, **(variables or {})})
        return OutgoingMessage(string.Formatter().vformat(text, (), values))


def _show(value: Any) -> Any:
    return ", ".join(map(str, value)) if isinstance(value, list) else value
