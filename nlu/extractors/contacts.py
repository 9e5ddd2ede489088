"""E-mail addresses, phone numbers and URLs.

- ``email``: ``jane.doe+shop@example.co.uk``; normalised with its domain in lower case.
- ``phone``: a number with its country code ("+44 20 7946 0958"), or a national number of the default region
  (``US``: "(415) 555-2671"), that ``phonenumbers`` (Google's libphonenumber) holds valid; normalised to E.164
  ``"+442079460958"``. A cheap pattern finds runs of 7 or more digits first; the library runs only on them.
- ``url``: ``https://...``, ``www.example.com/...`` or a bare domain with a common top-level domain
  ("example.com/help"); normalised with ``https://`` added when it has no scheme and the host in lower case.
  Trailing punctuation ("see example.com.") is not part of it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from nlu.extractors.base import MAX_CANDIDATES, EntityExtractor
from nlu.schema import ParsedEntity

# A match may only start where a run of its characters starts (the lookbehinds), so finditer is linear.
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_TLDS = ("com|org|net|io|co|uk|de|fr|nl|es|it|eu|us|ca|au|in|info|biz|shop|store|app|dev|ai|me|ly|be|ch|at|se|no"
         "|dk|pl|ie|nz|jp|br")
_URL = re.compile(
    rf"(?<![\w@.+-])(?:https?://[^\s<>\"'`]+|www\.[^\s<>\"'`]+|(?:[a-z0-9-]+\.)+(?:{_TLDS})\b(?![@.\w-])(?:/[^\s<>\"'`]*)?)",
    re.IGNORECASE,
)
_TRAILING = ".,;:!?)]}'\""
_PHONE_CANDIDATE = re.compile(r"(?<![\w+])\+?\(?\d[\d \t().-]{5,22}\d(?![\w])")


class EmailExtractor(EntityExtractor):
    """Finds e-mail addresses (entity ``email``)."""

    name = "email"

    def extract(self, text: str, now: datetime) -> list[ParsedEntity]:
        found = []
        for match in _EMAIL.finditer(text):
            local, _, domain = match.group().rpartition("@")
            found.append(self.entity("email", text, match.start(), match.end(), f"{local}@{domain.lower()}"))
        return found


class UrlExtractor(EntityExtractor):
    """Finds web addresses (entity ``url``)."""

    name = "url"

    def extract(self, text: str, now: datetime) -> list[ParsedEntity]:
        found = []
        for match in _URL.finditer(text):
            value = match.group().rstrip(_TRAILING)
            if "(" in value and value.count("(") > value.count(")"):
                value = value.split("(", 1)[0] or value
            if "." not in value:
                continue
            found.append(self.entity("url", text, match.start(), match.start() + len(value), normalize_url(value)))
        return found


def normalize_url(url: str) -> str:
    """``https://`` added when there is no scheme; the scheme and host in lower case."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "https", url
    host, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}{slash}{path}"


class PhoneExtractor(EntityExtractor):
    """Finds phone numbers (entity ``phone``) that libphonenumber holds valid, normalised to E.164.

    ``region`` is the country of numbers written without a country code (ISO 3166 code, default ``US``).
    """

    name = "phone"

    def __init__(self, region: str = "US") -> None:
        self.region = region

    def extract(self, text: str, now: datetime) -> list[ParsedEntity]:
        found: list[ParsedEntity] = []
        candidates = _PHONE_CANDIDATE.finditer(text)
        for count, candidate in enumerate(candidates):
            if count >= MAX_CANDIDATES:
                break
            phonenumbers = _phonenumbers()
            matcher = phonenumbers.PhoneNumberMatcher(candidate.group(), self.region,
                                                      leniency=phonenumbers.Leniency.VALID)
            for match in matcher:
                start = candidate.start() + match.start
                e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
                found.append(self.entity("phone", text, start, start + len(match.raw_string), e164))
        return found


def normalize_phone(text: str, region: str = "US") -> str | None:
    """The E.164 form of a phone number that is the whole of ``text`` and valid, else None."""
    phonenumbers = _phonenumbers()
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _phonenumbers() -> Any:
    """``phonenumbers``, imported on first use (about 15 ms)."""
    import phonenumbers

    return phonenumbers


__all__ = ["EmailExtractor", "PhoneExtractor", "UrlExtractor", "normalize_phone", "normalize_url"]
