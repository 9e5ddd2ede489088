"""Entity extractors that need no training data, and the pipeline that adds their entities to a parse.

Built-in (``nlu.builtin_entities``): ``amount``, ``number``, ``date``, ``time``, ``email``, ``phone``, ``url``,
``order_code``; a shop's own regexes and lookup tables, and synonyms, come from patterns files
(``nlu.entity_patterns``). See docs/entities.md.
"""

from nlu.extractors.amounts import AmountExtractor, format_amount, parse_amount
from nlu.extractors.base import DEFAULT_BUILTINS, ENTITY_EXTRACTORS, EntityExtractor
from nlu.extractors.codes import OrderCodeExtractor
from nlu.extractors.contacts import EmailExtractor, PhoneExtractor, UrlExtractor
from nlu.extractors.dates import DateExtractor, TimeExtractor
from nlu.extractors.numbers import NumberExtractor
from nlu.extractors.patterns import PatternExtractor, PatternSet, load_pattern_files, load_patterns
from nlu.extractors.pipeline import MAX_TEXT_CHARS, EntityPipeline

__all__ = [
    "EntityExtractor",
    "EntityPipeline",
    "ENTITY_EXTRACTORS",
    "DEFAULT_BUILTINS",
    "MAX_TEXT_CHARS",
    # built-in extractors
    "AmountExtractor",
    "DateExtractor",
    "EmailExtractor",
    "NumberExtractor",
    "OrderCodeExtractor",
    "PhoneExtractor",
    "TimeExtractor",
    "UrlExtractor",
    # patterns files
    "PatternExtractor",
    "PatternSet",
    "load_pattern_files",
    "load_patterns",
    # amounts
    "format_amount",
    "parse_amount",
]
