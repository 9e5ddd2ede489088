"""Slot values: taking them from the tagger's entities or a bare reply, and validating them per slot.

Whatever a customer sends, validation takes time linear in what it looks at, and it looks at no more than
the slot's ``max_length`` characters: a longer value or bare reply is refused before any pattern runs (a
domain's own ``regex`` included, which then works on a bounded text). The built-in patterns below are
linear: no quantifier nests in another over the same characters, and a match may only start where a run
of its characters starts (``findall`` would otherwise retry a long run from each of its characters). A
domain's regex is the operator's and may backtrack (``(a+)+$``): it runs with the ``regex`` module's timeout.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from dataclasses import dataclass
from typing import Any

import regex

from bot.domain.schema import SlotSpec

log = logging.getLogger(__name__)

#: A domain's own slot regex may backtrack badly on some input: each match is cut off after this long.
REGEX_TIMEOUT_SECONDS = 0.05


@functools.lru_cache(maxsize=256)
def _domain_pattern(pattern: str) -> regex.Pattern[str]:
    """A domain regex compiled with the ``regex`` module, whose matches take a timeout (``re``'s cannot)."""
    return regex.compile(pattern, regex.IGNORECASE | regex.V0)


_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")
_ORDER = re.compile(r"\b\d{5}\b")
_PHONE = re.compile(r"\+?\(?\d[\d ()-]{6,24}\d")  # "(020) 123 4567" keeps its opening bracket
_WEEKDAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|wed|thu|fri|sat|sun"
_MONTHS = "jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
_DATE = re.compile(
    rf"\b(?:today|tonight|tomorrow|yesterday|(?:next|last|this) (?:week|month|{_WEEKDAYS})|{_WEEKDAYS}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?(?: of)? (?:{_MONTHS})|(?:{_MONTHS}) \d{{1,2}}(?:st|nd|rd|th)?"
    rf"|\d{{1,2}}[/.-]\d{{1,2}}(?:[/.-]\d{{2,4}})?|\d{{4}}-\d{{2}}-\d{{2}})\b",
    re.IGNORECASE,
)
#: Words a bare reply may wrap a value in ("it's 48213", "my email is ...") that are not the value.
#: Whole words only, so a value that starts like one ("Northwood Lane 5", "notebook", "Thermos") keeps its letters.
_FILLER = re.compile(
    r"^(?:(?:no|nope|sorry|oops|actually|i meant|i mean|it'?s|it is|that'?s|that is|my \w+ is|the)\b|,|\s)+", re.IGNORECASE
)

_FINDERS = {"email": _EMAIL, "number": _NUMBER, "order_number": _ORDER, "phone": _PHONE, "date": _DATE}


@dataclass
class SlotCheck:
    """A candidate value and, when it is invalid, why (``too_long``: refused for its length alone)."""

    value: Any
    problem: str | None = None
    too_long: bool = False

    @property
    def ok(self) -> bool:
        return self.problem is None


def validate(name: str, spec: SlotSpec, value: str) -> SlotCheck:
    """Whether ``value`` fits slot ``name``: at most ``max_length`` characters, then its regex (full match)
    when given, else its type."""
    value = value.strip()
    words = name.replace("_", " ")
    if not value:
        return SlotCheck(value, f"the {words} is empty")
    if len(value) > spec.max_length:
        return SlotCheck(value, f"the {words} is too long ({len(value)} characters, at most {spec.max_length})",
                         too_long=True)
    if spec.regex is not None:
        try:
            ok = _domain_pattern(spec.regex).fullmatch(value, timeout=REGEX_TIMEOUT_SECONDS) is not None
        except TimeoutError:  # a backtracking pattern of the domain's: this value is refused, the loop goes on
            log.warning("slot %s: its regex %r took over %g s on a %d-character value; the value is refused",
                        name, spec.regex, REGEX_TIMEOUT_SECONDS, len(value))
            ok = False
        return SlotCheck(value, None if ok else f"{_shown(value)} is not a valid {words}")
    finder = _FINDERS.get(spec.type)
    invalid = f"{_shown(value)} is not a valid {_TYPE_WORDS.get(spec.type, spec.type)}"
    if finder is not None and finder.fullmatch(value) is None:
        return SlotCheck(value, invalid)
    if spec.type == "number":
        if "." in value or "," in value:
            number = float(value.replace(",", "."))
            return SlotCheck(number) if math.isfinite(number) else SlotCheck(value, invalid)  # "9" * 400 + ".5"
        return SlotCheck(int(value))
    return SlotCheck(value)


def _shown(value: str, limit: int = 60) -> str:
    """The value quoted for a reason text, shortened when long (the reason is said to the customer)."""
    return repr(value if len(value) <= limit else value[: limit - 3] + "...")


_TYPE_WORDS = {"order_number": "order number (5 digits)", "email": "e-mail address", "date": "date",
               "number": "number", "phone": "phone number"}


def from_entities(name: str, spec: SlotSpec, entities: list[Any]) -> str | None:
    """The last value the tagger found for this slot's entities (the last one wins: "not 1, but 2")."""
    wanted = set(spec.entities or [name])
    values = [e.value for e in entities if e.entity in wanted]
    return values[-1] if values else None


def from_bare_reply(spec: SlotSpec, text: str) -> str:
    """The value in a bare reply to a slot question: a typed value found in it, else the text unwrapped.

    A reply longer than the slot's ``max_length`` is not searched: it comes back stripped, for
    :func:`validate` to refuse as too long.
    """
    if len(text) > spec.max_length:
        return text.strip()
    finder = _FINDERS.get(spec.type)
    if finder is not None and spec.regex is None:
        found = finder.findall(text)
        if found:
            return found[-1]
    return _FILLER.sub("", text).strip().rstrip(".!")
