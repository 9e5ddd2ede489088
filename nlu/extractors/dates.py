"""Dates and times, relative ones resolved against the message's time.

:class:`DateExtractor` (entity ``date``) finds "today", "tomorrow", "the day after tomorrow", "next monday",
"friday", "this week", "in 2 days", "in two weeks", "3 days ago", "3rd of june", "June 3, 2027", "24 dec",
"12/05/2024" and "2026-12-07"; the normalised value is the ISO date ``"2026-12-07"``. A weekday or a day of a
month without a year means the next one to come ("friday" on a Friday is a week later; "this friday" is today).
Numeric dates read month first ("12/05/2024" is 5 December) unless the first number cannot be a month.

:class:`TimeExtractor` (entity ``time``) finds "3pm", "3:30 p.m.", "15:00", "10 o'clock", "noon" and
"midnight"; the normalised value is ``"HH:MM"`` (24 hours). In "tomorrow at 3pm" the date is "tomorrow" and the
time "3pm": two entities.

A cheap pattern finds the candidate spans; simple words ("tomorrow", "next monday") resolve directly, and the
rest are parsed by
``dateparser`` (imported on first use, then about 0.3-0.7 ms a span), so a message without a date costs a
single regex scan.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from nlu.extractors.base import MAX_CANDIDATES, EntityExtractor
from nlu.extractors.numbers import WORD
from nlu.schema import ParsedEntity

_WEEKDAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|december"
           "|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec")
_DAY = r"(?:3[01]|[12]\d|0?[1-9])(?:st|nd|rd|th)?"
_COUNT = rf"(?:\d{{1,3}}|an?|{WORD}(?:-{WORD})?)"  # one word: a run would make the scan quadratic
_UNIT = r"(?:days?|weeks?|months?|years?)"
_DATE = re.compile(
    rf"\b(?:today|tonight|tomorrow|yesterday|(?:the[ \t]+)?day[ \t]+(?:after[ \t]+tomorrow|before[ \t]+yesterday)"
    rf"|(?:next|last|this|coming)[ \t]+(?:week|month|{_WEEKDAYS})"
    rf"|{_WEEKDAYS}"
    rf"|in[ \t]+{_COUNT}[ \t]+{_UNIT}|{_COUNT}[ \t]+{_UNIT}[ \t]+ago"
    rf"|{_DAY}(?:[ \t]+of)?[ \t]+(?:{_MONTHS})\b(?:,?[ \t]+\d{{4}})?"
    rf"|(?:{_MONTHS})[ \t]+{_DAY}(?:,?[ \t]+\d{{4}})?"
    rf"|\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}[/.]\d{{1,2}}[/.](?:\d{{4}}|\d{{2}}))\b",
    re.IGNORECASE,
)
_SIMPLE = {"today": 0, "tonight": 0, "tomorrow": 1, "yesterday": -1}
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")
_WEEKDAY_NAMES = _WEEKDAYS.split("|")
_WEEKDAY = re.compile(rf"(?:(?P<which>next|this|coming|last) )?(?P<day>{_WEEKDAYS})")

_TIME = re.compile(
    r"(?<![\w:.])(?:(?P<h24>[01]?\d|2[0-3]):(?P<m24>[0-5]\d)(?:[ \t]?(?P<ampm24>[ap])\.?m\b\.?)?"
    r"|(?P<h12>1[0-2]|0?[1-9])(?:[ \t]?(?P<ampm>[ap])\.?m\b\.?|[ \t]+o'?clock\b)"
    r"|(?P<word>noon|midday|midnight)\b)(?![:\d])",
    re.IGNORECASE,
)


class DateExtractor(EntityExtractor):
    """Finds dates (entity ``date``), normalised to ISO dates resolved against the message's time."""

    name = "date"

    def extract(self, text: str, now: datetime) -> list[ParsedEntity]:
        found = []
        for count, match in enumerate(_DATE.finditer(text)):
            if count >= MAX_CANDIDATES:
                break
            resolved = resolve_date(match.group(), now)
            if resolved is not None:
                found.append(self.entity("date", text, match.start(), match.end(), resolved.isoformat()))
        return found


def resolve_date(span: str, now: datetime) -> date | None:
    """The date a span names, relative to ``now`` (its wall-clock date; any time zone is kept as is)."""
    key = " ".join(span.lower().split())
    if key in _SIMPLE:
        return now.date() + timedelta(days=_SIMPLE[key])
    weekday = _WEEKDAY.fullmatch(key)
    if weekday is not None:  # the commonest relative dates, without the parser (same answers as dateparser's)
        ahead = (_WEEKDAY_NAMES.index(weekday["day"]) - now.weekday()) % 7
        if weekday["which"] == "last":
            return now.date() - timedelta(days=(7 - ahead) % 7 or 7)
        if weekday["which"] != "this" and ahead == 0:
            ahead = 7
        return now.date() + timedelta(days=ahead)
    if _ISO.fullmatch(key):
        try:
            return date.fromisoformat(key)
        except ValueError:
            return None
    parsed = _dateparser().parse(key, languages=["en"], settings=_settings(now))
    return parsed.date() if parsed is not None else None


def _settings(now: datetime) -> dict[str, Any]:
    return {"RELATIVE_BASE": now.replace(tzinfo=None), "PREFER_DATES_FROM": "future",
            "RETURN_AS_TIMEZONE_AWARE": False, "STRICT_PARSING": False}


def _dateparser() -> Any:
    """``dateparser``, imported on first use (it takes about 0.1 s to import)."""
    import dateparser

    return dateparser


class TimeExtractor(EntityExtractor):
    """Finds times of day (entity ``time``), normalised to ``"HH:MM"``."""

    name = "time"

    def extract(self, text: str, now: datetime) -> list[ParsedEntity]:
        found = []
        for match in _TIME.finditer(text):
            normalized = time_value(match)
            if normalized is not None:
                found.append(self.entity("time", text, match.start(), match.end(), normalized))
        return found


def time_value(match: re.Match[str]) -> str | None:
    """``"HH:MM"`` for a match of the time pattern."""
    if match["word"]:
        return "00:00" if match["word"].lower() == "midnight" else "12:00"
    if match["h24"] is not None:
        hour, minute, ampm = int(match["h24"]), int(match["m24"]), match["ampm24"]
        if ampm and not 1 <= hour <= 12:
            return None  # "15:00 pm"
    else:
        hour, minute, ampm = int(match["h12"]), 0, match["ampm"]
    if ampm:
        hour = hour % 12 + (12 if ampm.lower() == "p" else 0)
    return f"{hour:02d}:{minute:02d}"


def parse_time(text: str) -> str | None:
    """``"HH:MM"`` when the whole of ``text`` is a time, else None."""
    match = _TIME.fullmatch(text.strip())
    return time_value(match) if match is not None else None


__all__ = ["DateExtractor", "TimeExtractor", "parse_time", "resolve_date"]
