"""Numbers written in digits ("3", "-4", "1,250.50") or in English words ("twenty-one", "three hundred and forty
two"); the normalised value is an ``int`` (a ``float`` when it has a fraction).

Words are converted by ``text2num`` (its Rust core takes about a microsecond a phrase); a run of number words it
cannot read as one number ("five five five") is not a number. A lone "one" is ambiguous in running text ("which
one", "one moment") and counts only when it is the whole message.
"""

from __future__ import annotations

import re
from datetime import datetime

from text_to_num import text2num

from nlu.extractors.base import EntityExtractor
from nlu.schema import ParsedEntity

_UNITS = ("zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen"
          "|seventeen|eighteen|nineteen")
_TENS = "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
_SCALES = "hundred|thousand|million|billion"
#: one number word (whole word)
WORD = rf"(?:{_UNITS}|{_TENS}|{_SCALES})"
#: a run of number words joined by spaces, hyphens or "and" (a match starts only where a word starts)
WORDS = rf"\b{WORD}(?:(?:[ \t]+and[ \t]+|[ \t]+|-){WORD})*\b"
#: digits, with thousands separators or not, and a decimal part; not inside a word, a code or a longer number
DIGITS = r"(?:(?<![\w.,-])-|(?<![\w.,-]))(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w]|[.,]\d)"

_NUMBER = re.compile(rf"{DIGITS}|{WORDS}", re.IGNORECASE)


def number_value(text: str) -> int | float | None:
    """The number ``text`` is (digits or words, the whole of it), or None."""
    text = text.strip()
    if not text:
        return None
    if text[0].isdigit() or text[0] == "-":
        plain = text.replace(",", "")
        try:
            value = float(plain) if "." in plain else int(plain)
        except ValueError:
            return None
        return value
    try:
        return int(text2num(" ".join(text.lower().replace("-", " ").split()), "en"))
    except ValueError:
        return None


class NumberExtractor(EntityExtractor):
    """Finds numbers in digits or words (entity ``number``)."""

    name = "number"

    def extract(self, text: str, now: datetime) -> list[ParsedEntity]:
        found = []
        for match in _NUMBER.finditer(text):
            span = match.group()
            if span.lower() == "one" and text.strip(" .!?").lower() != "one":
                continue
            value = number_value(span)
            if value is not None:
                found.append(self.entity("number", text, match.start(), match.end(), value))
        return found


__all__ = ["DIGITS", "NumberExtractor", "WORD", "WORDS", "number_value"]
