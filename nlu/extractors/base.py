"""The interface of an entity extractor, and the registry of the built-in ones.

An extractor finds entities in a message without training data: by pattern, by word lists, with a parsing
library. Each one takes time linear in the text it is given (its patterns are written so that no quantifier
nests in another over the same characters, and a library runs only on short candidate spans that a cheap
pattern found first), and :class:`~nlu.extractors.pipeline.EntityPipeline` gives it no more than
:data:`~nlu.extractors.pipeline.MAX_TEXT_CHARS` characters.
"""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any, ClassVar

from csbot.plugins import Registry
from nlu.schema import ParsedEntity

#: The most candidate spans one extractor hands to its parsing library per message (the rest are skipped):
#: a message of 2,000 characters of "monday monday ..." must not cost 500 date-parser calls.
MAX_CANDIDATES = 16


class EntityExtractor(abc.ABC):
    """Finds entities in a message; ``name`` is recorded on each entity it returns (``ParsedEntity.extractor``)."""

    #: the extractor's name (the built-in ones: their registered name)
    name: ClassVar[str] = ""

    @abc.abstractmethod
    def extract(self, text: str, now: datetime) -> list[ParsedEntity]:
        """The entities in ``text``, by start offset; relative dates and times resolve against ``now``."""

    def entity(self, entity: str, text: str, start: int, end: int, normalized: Any = None) -> ParsedEntity:
        """A found entity: the span of ``text`` it selects, its normalised value, this extractor's name."""
        return ParsedEntity(entity, text[start:end], start, end, 1.0, normalized=normalized, extractor=self.name)


#: The built-in extractors (``nlu.builtin_entities``); each finds entities named as it is.
ENTITY_EXTRACTORS = Registry("nlu.builtin_entities", "nlu.extractors.base:EntityExtractor", {
    "amount": "nlu.extractors.amounts:AmountExtractor",
    "number": "nlu.extractors.numbers:NumberExtractor",
    "date": "nlu.extractors.dates:DateExtractor",
    "time": "nlu.extractors.dates:TimeExtractor",
    "email": "nlu.extractors.contacts:EmailExtractor",
    "phone": "nlu.extractors.contacts:PhoneExtractor",
    "url": "nlu.extractors.contacts:UrlExtractor",
    "order_code": "nlu.extractors.codes:OrderCodeExtractor",
})

#: The built-in extractors, in the order they win overlaps (``nlu.builtin_entities``' default).
DEFAULT_BUILTINS = ("email", "url", "phone", "amount", "date", "time", "order_code", "number")

__all__ = ["DEFAULT_BUILTINS", "ENTITY_EXTRACTORS", "EntityExtractor", "MAX_CANDIDATES"]
