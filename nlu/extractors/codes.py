"""Order-number-like codes, by pattern: 5 to 9 digits ("48213", "#48213") or 1 to 4 letters and 4 to 12 digits,
with a hyphen between or not ("AB-12345", "ORD123456"). The normalised value is the code in upper case without
a leading "#". A shop whose codes look otherwise declares its own pattern in a patterns file
(:mod:`nlu.extractors.patterns`).
"""

from __future__ import annotations

import re
from datetime import datetime

from nlu.extractors.base import EntityExtractor
from nlu.schema import ParsedEntity

_CODE = re.compile(r"(?<![\w#-])#?(?:[a-z]{1,4}-?\d{4,12}|\d{5,9})(?![\w-]|[.,]\d)", re.IGNORECASE)


class OrderCodeExtractor(EntityExtractor):
    """Finds order-number-like codes (entity ``order_code``)."""

    name = "order_code"

    def extract(self, text: str, now: datetime) -> list[ParsedEntity]:
        return [self.entity("order_code", text, m.start(), m.end(), m.group().lstrip("#").upper())
                for m in _CODE.finditer(text)]


__all__ = ["OrderCodeExtractor"]
