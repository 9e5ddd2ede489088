"""Data importers: read training data in any supported format into canonical :class:`~nlu.schema.Example`.

Formats (``--format NAME``): jsonl, rasa_yaml, rasa_json, bio, csv, clinc150, nlupp. Without a name,
:func:`detect_format` tells the format from the path and a peek at the content.
"""

from __future__ import annotations

# Importing each format module registers it.
from . import bio, clinc150, csv_table, jsonl, nlupp, rasa_json, rasa_yaml  # noqa: F401
from .base import (
    FORMATS,
    Importer,
    detect_format,
    get_importer,
    known_formats,
    load_examples,
    register_importer,
)

__all__ = [
    "FORMATS",
    "Importer",
    "detect_format",
    "get_importer",
    "known_formats",
    "load_examples",
    "register_importer",
]
