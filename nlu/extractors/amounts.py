"""Amounts of money: a number with a currency symbol, ISO code or word ("$50", "€ 20", "20€", "USD 1,250.50",
"50 bucks", "fifty quid", "20 euros", "99 cents"); the normalised value is the string ``"<amount> <ISO code>"``
(``"50 USD"``, ``"12.50 EUR"``, ``"0.99 USD"``), which :func:`parse_amount` turns back into a ``Decimal`` and
a code.

A bare number is not an amount here (a slot of type ``amount`` takes one, see :mod:`bot.slots`). "$" means
US dollars and "pounds" British pounds. The search is two-step and linear: a cheap pattern finds currency
markers, then a number is looked for right before or after each marker, in a window of
:data:`WINDOW` characters.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation

from nlu.extractors.base import MAX_CANDIDATES, EntityExtractor
from nlu.extractors.numbers import WORDS, number_value
from nlu.schema import ParsedEntity

#: symbol -> ISO code; a symbol usually comes before the number ("$50"), sometimes after ("20€")
SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "₩": "KRW", "₽": "RUB", "₺": "TRY"}
#: currency word (lower case, singular and plural) -> (ISO code, what one of it is worth in that currency)
WORDS_TO_CODE: dict[str, tuple[str, Decimal]] = {
    **{w: ("USD", Decimal(1)) for w in ("dollar", "dollars", "buck", "bucks", "usd")},
    **{w: ("EUR", Decimal(1)) for w in ("euro", "euros", "eur")},
    **{w: ("GBP", Decimal(1)) for w in ("pound", "pounds", "pound sterling", "pounds sterling", "quid", "gbp")},
    **{w: ("JPY", Decimal(1)) for w in ("yen", "jpy")},
    **{w: ("INR", Decimal(1)) for w in ("rupee", "rupees", "inr")},
    **{w: ("CHF", Decimal(1)) for w in ("franc", "francs", "swiss francs", "chf")},
    **{w: ("USD", Decimal("0.01")) for w in ("cent", "cents")},
    **{w: ("GBP", Decimal("0.01")) for w in ("pence", "penny")},
}
#: ISO codes recognised in upper case only ("TRY 50", "50 SEK"; "try 5 times" is no amount)
CODES = ("USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "NZD", "INR", "CNY", "SEK", "NOK", "DKK", "PLN", "CZK",
         "HUF", "MXN", "BRL", "ZAR", "SGD", "HKD", "TRY", "KRW", "RUB")
#: how far before or after a currency marker its number may lie (characters)
WINDOW = 80

_word_alternatives = "|".join(sorted((re.escape(w).replace(r"\ ", "[ \t]+") for w in WORDS_TO_CODE),
                                     key=len, reverse=True))
_MARKER = re.compile(
    rf"(?P<symbol>[{''.join(SYMBOLS)}])|\b(?P<word>{_word_alternatives})\b|(?-i:\b(?P<code>{'|'.join(CODES)})\b)",
    re.IGNORECASE,
)
_PLAIN = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w]|[.,]\d)"
_SCALE = r"(?:[ \t]+(?P<scale>thousand|million|billion))?"
#: a number right after a symbol or code: "$ 50", "USD 1,250.50"
_AFTER = re.compile(rf"[ \t]?(?P<num>{_PLAIN}){_SCALE}\b", re.IGNORECASE)
#: a number right before a marker: "50 bucks", "fifty quid", "20€", "1.5 million dollars"
_BEFORE = re.compile(rf"(?<![\w.,-])(?:(?P<num>{_PLAIN}){_SCALE}|(?P<words>{WORDS}))[ \t]?$", re.IGNORECASE)
_SCALES = {"thousand": Decimal(1000), "million": Decimal(10**6), "billion": Decimal(10**9)}


def format_amount(amount: Decimal, currency: str) -> str:
    """``"50 USD"``, ``"12.50 EUR"``: whole amounts without decimals, others with at least two."""
    if amount == amount.to_integral_value():
        return f"{int(amount)} {currency}"
    if amount.as_tuple().exponent >= -2:  # type: ignore[operator]
        amount = amount.quantize(Decimal("0.01"))
    return f"{amount:f} {currency}"


def parse_amount(normalized: str) -> tuple[Decimal, str | None]:
    """The amount and ISO code of a normalised amount (``"50 USD"``); a bare number has no code (None)."""
    number, _, code = normalized.strip().partition(" ")
    return Decimal(number), (code or None)


def _number(num: str | None, scale: str | None, words: str | None) -> Decimal | None:
    if words:
        value = number_value(words)
        return None if value is None else Decimal(value)
    try:
        amount = Decimal((num or "").replace(",", ""))
    except InvalidOperation:
        return None
    return amount * _SCALES[scale.lower()] if scale else amount


class AmountExtractor(EntityExtractor):
    """Finds amounts of money (entity ``amount``), normalised to ``"<amount> <ISO code>"``."""

    name = "amount"

    def extract(self, text: str, now: datetime) -> list[ParsedEntity]:
        found: list[ParsedEntity] = []
        taken_until = 0
        for count, marker in enumerate(_MARKER.finditer(text)):
            if count >= MAX_CANDIDATES:
                break
            if marker.start() < taken_until:
                continue
            span = self._around(text, marker, taken_until)
            if span is not None:
                start, end, normalized = span
                found.append(self.entity("amount", text, start, end, normalized))
                taken_until = end
        return found

    def _around(self, text: str, marker: re.Match[str], taken_until: int) -> tuple[int, int, str] | None:
        """The amount a marker belongs to: a number right after a symbol or code, else right before it."""
        word = " ".join(marker["word"].lower().split()) if marker["word"] else None
        if word is not None:
            code, unit = WORDS_TO_CODE[word]
        else:
            code, unit = SYMBOLS.get(marker["symbol"] or "") or marker["code"], Decimal(1)
        if word is None or word.upper() in CODES:  # "$50", "USD 50", "usd 50"; "bucks 50" is no amount
            after = _AFTER.match(text, marker.end(), min(len(text), marker.end() + WINDOW))
            if after is not None:
                amount = _number(after["num"], after["scale"], None)
                if amount is not None:
                    return marker.start(), after.end(), format_amount(amount * unit, code)
        lo = max(taken_until, marker.start() - WINDOW)
        if lo > 0 and lo > taken_until:  # start the window at a word's start, never inside one
            space = text.find(" ", lo, marker.start())
            if space < 0:
                return None
            lo = space + 1
        before = _BEFORE.search(text, lo, marker.start())
        if before is None:
            return None
        amount = _number(before["num"], before["scale"], before["words"])
        if amount is None:
            return None
        return before.start(), marker.end(), format_amount(amount * unit, code)


__all__ = ["AmountExtractor", "CODES", "SYMBOLS", "WORDS_TO_CODE", "format_amount", "parse_amount"]
