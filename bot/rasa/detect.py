"""Telling a Rasa domain or stories file from a csbot one, for a helpful error instead of schema errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

#: What the loaders add to their error when given a Rasa file.
RASA_HINT = "this looks like a Rasa {kind} file: convert it with `csbot init --from-rasa PROJECT`"

_RASA_DOMAIN_KEYS = frozenset({"responses", "forms", "actions", "session_config", "e2e_actions"})
_STEP_KEYS = frozenset({"intent", "action", "active_loop", "slot_was_set", "checkpoint", "or", "user"})


def looks_like_rasa(data: Any, kind: Literal["domain", "stories"]) -> bool:
    """Whether parsed YAML ``data`` is a Rasa domain (``kind="domain"``) or stories/rules file (``"stories"``)."""
    if not isinstance(data, Mapping):
        return False
    if kind == "domain":
        if _RASA_DOMAIN_KEYS & set(data):
            return True
        version = data.get("version")
        return isinstance(data.get("intents"), list) or (isinstance(version, str) and version.startswith(("2", "3")))
    if "rules" in data or "nlu" in data:
        return True
    items = data.get("stories")
    if not isinstance(items, list):
        return False
    for item in items:
        if isinstance(item, Mapping) and ("story" in item or "rule" in item):
            return True
        steps = item.get("steps") if isinstance(item, Mapping) else None
        if isinstance(steps, list) and any(isinstance(s, Mapping) and _STEP_KEYS & set(s) - {"user"} for s in steps):
            return True
    return False


def rasa_hint(kind: Literal["domain", "stories"]) -> str:
    return RASA_HINT.format(kind=kind)


__all__ = ["RASA_HINT", "looks_like_rasa", "rasa_hint"]
