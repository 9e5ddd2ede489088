"""Slot values: taking them from the tagger's entities or a bare reply, and validating them per slot.

Whatever a customer sends, validation takes time linear in what it looks at, and it looks at no more than
the slot's ``max_length`` characters: a longer value or bare reply is refused before any pattern runs (a
domain's own ``regex`` included, which then works on a bounded text). The built-in patterns below are
linear: no quantifier nests in another over the same characters, and a match may only start where a run
of its characters starts (``findall`` would otherwise retry a long run from each of its characters). A
domain's regex is the operator's and may backtrack (``(a+)+$``): it runs with the ``regex`` module's timeout.

Slot types with a built-in entity extractor (:mod:`nlu.extractors`) take their values from it too: from the
extractors' entities of the message (:meth:`~nlu.extractors.EntityPipeline.augment` adds them to the parse;
a slot of type ``amount`` takes an ``amount`` entity whatever its name) and from a bare reply ("fifty bucks"
answers "how much?"). The extractors are linear in the text too, and see no more than ``max_length``
characters. What a slot stores, and so what ``{slot}`` shows in a template, is the normalised value:

==============  ====================================  =================================================
type            a customer says                       stored (``{slot}`` renders)
==============  ====================================  =================================================
amount          "fifty bucks", "€20", "50"            ``"50 USD"``, ``"20 EUR"``, ``"50"`` (a bare number)
number          "3", "2,5", "twenty-one"              ``3``, ``2.5``, ``21``
date            "next monday", "in 2 days"            the ISO date, ``"2026-12-07"`` (resolved against ``now``)
time            "3pm", "15:30", "noon"                ``"15:00"``, ``"15:30"``, ``"12:00"``
phone           "+44 20 7946 0958"                    E.164 ``"+442079460958"`` (as typed when not valid in the
                                                      default region US but of a phone's shape)
email           "Jane@Example.COM"                    ``"Jane@example.com"``
url             "example.com/help"                    ``"https://example.com/help"``
order_number    "48213"                               ``"48213"`` (5 digits, as before)
==============  ====================================  =================================================

``now`` (the message's time) defaults to the current local time.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import regex

from bot.domain.schema import SlotSpec
from nlu.extractors.amounts import AmountExtractor, format_amount
from nlu.extractors.contacts import UrlExtractor, normalize_phone
from nlu.extractors.dates import DateExtractor, TimeExtractor, parse_time, resolve_date
from nlu.extractors.numbers import NumberExtractor, number_value

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

#: slot type -> the built-in extractor (and entity) whose values fill it
BUILTIN_ENTITY = {"amount": "amount", "number": "number", "date": "date", "time": "time", "email": "email",
                  "phone": "phone", "url": "url", "order_number": "order_code"}

#: the extractors a bare reply is searched with, by slot type (they keep no state between calls)
_EXTRACTORS = {"amount": AmountExtractor(), "number": NumberExtractor(), "date": DateExtractor(),
               "time": TimeExtractor(), "url": UrlExtractor()}


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now().astimezone()


@dataclass
class SlotCheck:
    """A candidate value and, when it is invalid, why (``too_long``: refused for its length alone)."""

    value: Any
    problem: str | None = None
    too_long: bool = False

    @property
    def ok(self) -> bool:
        return self.problem is None


def validate(name: str, spec: SlotSpec, value: str, now: datetime | None = None) -> SlotCheck:
    """Whether ``value`` fits slot ``name``: at most ``max_length`` characters, then its regex (full match)
    when given, else its type; a valid value comes back normalised (the table above). Relative dates resolve
    against ``now``."""
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
    if spec.type in _NORMALIZERS:
        normalized = _NORMALIZERS[spec.type](value, _now(now))
        return SlotCheck(normalized) if normalized is not None else SlotCheck(value, invalid)
    if finder is not None and finder.fullmatch(value) is None:
        if spec.type == "number":  # "twenty-one"
            words = number_value(value) if not value[0].isdigit() else None
            if words is not None:
                return SlotCheck(words)
        if spec.type == "date" and _whole(_EXTRACTORS["date"], value, _now(now)) is not None:  # "in 2 days"
            return SlotCheck(_whole(_EXTRACTORS["date"], value, _now(now)))
        return SlotCheck(value, invalid)
    if spec.type == "number":
        if "." in value or "," in value:
            number = float(value.replace(",", "."))
            return SlotCheck(number) if math.isfinite(number) else SlotCheck(value, invalid)  # "9" * 400 + ".5"
        return SlotCheck(int(value))
    if spec.type == "date":  # the ISO date when the words resolve, else as said ("12.5" may not)
        resolved = resolve_date(value, _now(now))
        return SlotCheck(resolved.isoformat() if resolved is not None else value)
    if spec.type == "phone":
        return SlotCheck(normalize_phone(value) or value)
    if spec.type == "email":
        local, _, domain = value.rpartition("@")
        return SlotCheck(f"{local}@{domain.lower()}")
    return SlotCheck(value)


def _whole(extractor: Any, value: str, now: datetime) -> Any:
    """The normalised value of the one entity ``extractor`` finds spanning the whole of ``value``, else None."""
    found = extractor.extract(value, now)
    if len(found) == 1 and found[0].start == 0 and found[0].end == len(value):
        return found[0].normalized
    return None


def _amount(value: str, now: datetime) -> str | None:
    """``"50 USD"`` for an amount with its currency, ``"50"`` for a bare number (digits or words)."""
    normalized = _whole(_EXTRACTORS["amount"], value, now)
    if normalized is not None:
        return str(normalized)
    number = number_value(value)
    if number is None or not math.isfinite(number):
        return None
    return format_amount(Decimal(str(number)), "").strip()


def _url(value: str, now: datetime) -> str | None:
    normalized = _whole(_EXTRACTORS["url"], value, now)
    return str(normalized) if normalized is not None else None


#: slot types whose values only a built-in extractor recognises: value -> normalised value, or None (invalid)
_NORMALIZERS = {"amount": _amount, "time": lambda value, now: parse_time(value), "url": _url}


def _shown(value: str, limit: int = 60) -> str:
    """The value quoted for a reason text, shortened when long (the reason is said to the customer)."""
    return repr(value if len(value) <= limit else value[: limit - 3] + "...")


_TYPE_WORDS = {"order_number": "order number (5 digits)", "email": "e-mail address", "date": "date",
               "number": "number", "phone": "phone number", "amount": "amount", "time": "time",
               "url": "web address"}


def from_entities(name: str, spec: SlotSpec, entities: list[Any]) -> str | None:
    """The last value found for this slot's entities (the last one wins: "not 1, but 2"), normalised when the
    entity carries a normalised value. A slot without its own regex, of a type with a built-in extractor, also
    takes that extractor's entities (``amount`` for an amount slot, ``order_code`` for an order number) when
    their value is valid for it."""
    wanted = set(spec.entities or [name])
    builtin = BUILTIN_ENTITY.get(spec.type) if spec.regex is None else None
    values = []
    for e in entities:
        if e.entity in wanted:
            values.append(_entity_value(e))
        elif e.entity == builtin and getattr(e, "extractor", "model") != "model":
            value = _entity_value(e)
            if validate(name, spec, value).ok:
                values.append(value)
    return values[-1] if values else None


def _entity_value(entity: Any) -> str:
    normalized = getattr(entity, "normalized", None)
    return str(normalized) if normalized is not None else entity.value


def from_bare_reply(spec: SlotSpec, text: str, now: datetime | None = None) -> str:
    """The value in a bare reply to a slot question: a typed value found in it (by the type's pattern, else its
    built-in extractor: "fifty bucks", "twenty-one", "in 2 days"), else the text unwrapped. The value comes back
    as said; :func:`validate` normalises it.

    A reply longer than the slot's ``max_length`` is not searched: it comes back stripped, for
    :func:`validate` to refuse as too long.
    """
    if len(text) > spec.max_length:
        return text.strip()
    if spec.regex is None:
        extractor = _EXTRACTORS.get(spec.type)
        if spec.type in _NORMALIZERS and extractor is not None:  # amount, time, url: the extractor first
            found = extractor.extract(text, _now(now))
            if found:
                return str(found[-1].value)
        finder = _FINDERS.get(spec.type) or (_NUMBER if spec.type == "amount" else None)  # "50": a bare amount
        if finder is not None:
            matches = finder.findall(text)
            if matches:
                return matches[-1]
        if spec.type in ("number", "date", "amount"):  # "twenty-one", "in 2 days", "fifty" (a bare amount)
            found = _EXTRACTORS["number" if spec.type == "amount" else spec.type].extract(text, _now(now))
            if found:
                return str(found[-1].value)
    return _FILLER.sub("", text).strip().rstrip(".!")
