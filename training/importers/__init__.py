"""Data importers: read training data in any supported format into canonical :class:`~nlu.schema.Example`.

Formats (``--format NAME``): the names of :data:`csbot.plugins.IMPORTERS` (jsonl, rasa_yaml, rasa_json,
bio, csv, clinc150, nlupp). Without a name, :func:`detect_format` tells the format from the path and a
peek at the content. Each format's module is imported when the format is first used.
"""

from __future__ import annotations

from .base import Importer, detect_format, get_importer, known_formats, load_examples

__all__ = [
    "Importer",
    "detect_format",
    "get_importer",
    "known_formats",
    "load_examples",
]
