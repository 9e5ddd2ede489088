"""The Q&A source interface, format lookup and detection, and :func:`load_records`.

A source reads one file into :class:`~retrieval.records.QARecord` objects; every error names the file and,
when known, the line. The formats are the entries of :data:`csbot.plugins.QA_SOURCES`; detection tries
them in that registry's order. NLU data formats are turned into Q&A by ``training.qa_data``, which knows them.
"""

from __future__ import annotations

import abc
import functools
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from csbot.errors import DataError, UnknownFormatError
from csbot.plugins import QA_SOURCES
from retrieval.records import QARecord

logger = logging.getLogger(__name__)


class QASource(abc.ABC):
    """Reads one file format into Q&A records; built-in ones are listed in :data:`csbot.plugins.QA_SOURCES`."""

    #: The format's name (its key in the registry).
    name: ClassVar[str]

    @abc.abstractmethod
    def sniff(self, path: Path) -> bool:
        """Cheaply tell whether ``path`` is in this format (its name and a peek at its content); never raises."""

    @abc.abstractmethod
    def load(self, path: Path, options: Mapping[str, Any]) -> list[QARecord]:
        """Every record in ``path``."""


def source_formats() -> list[str]:
    """The names of every built-in Q&A source format, sorted."""
    return sorted(QA_SOURCES.names())


@functools.cache
def get_source(name: str) -> QASource:
    """The source for format ``name`` (a built-in name or a dotted path to a :class:`QASource` subclass)."""
    return QA_SOURCES.resolve(name)()


def detect_source(path: str | Path) -> str | None:
    """The Q&A format ``path`` is in, or None when no Q&A source recognises it (tried in registry order)."""
    path = Path(path)
    for name in QA_SOURCES.names():
        try:
            if get_source(name).sniff(path):
                return name
        except Exception:  # a sniff must never break detection
            logger.debug("sniffing %s as %s failed", path, name, exc_info=True)
    return None


def load_records(path: str | Path, format: str | None = None, **options: Any) -> list[QARecord]:
    """Records from ``path`` in ``format`` (detected when None); unknown formats raise UnknownFormatError."""
    path = Path(path)
    if not path.exists():
        raise DataError("no such file or directory", path)
    name = format or detect_source(path)
    if name is None:
        raise UnknownFormatError(
            f"not a Q&A file this version reads; Q&A formats: {', '.join(source_formats())}", path
        )
    if not QA_SOURCES.is_known(name) and "." not in name and ":" not in name:
        raise UnknownFormatError(f"unknown Q&A format {name!r}; Q&A formats: {', '.join(source_formats())}")
    records = get_source(name).load(path, options)
    logger.info("loaded %d Q&A records from %s (%s)", len(records), path, name)
    return records


def record_from_mapping(data: Mapping[str, Any], path: Path, line: int, default_source: str) -> QARecord:
    """A record from one JSON object or CSV row already mapped to field names; bad fields name the line.

    ``question`` and ``answer`` are non-empty strings; ``id`` a string or an integer; ``intent`` and
    ``source`` strings; ``tags`` a list of strings or a comma-separated string.
    """
    for name in ("question", "answer"):
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise DataError(f"'{name}' must be a string", path, line)
    question = (data.get("question") or "").strip()
    answer = (data.get("answer") or "").strip()
    if not question:
        raise DataError("empty or missing 'question'", path, line)
    if not answer:
        raise DataError("empty or missing 'answer'", path, line)
    tags = data.get("tags") or []
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.replace(";", ",").split(",") if t.strip()]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise DataError("'tags' must be a list of strings or a comma-separated string", path, line)
    intent = data.get("intent")
    if intent is not None and not isinstance(intent, str):
        raise DataError("'intent' must be a string", path, line)
    record_id = data.get("id")
    if record_id is not None and (isinstance(record_id, bool) or not isinstance(record_id, (str, int))):
        raise DataError("'id' must be a string or an integer", path, line)
    source = data.get("source")
    if source is not None and not isinstance(source, str):
        raise DataError("'source' must be a string", path, line)
    return QARecord.create(
        question,
        answer,
        id=str(record_id).strip() if record_id not in (None, "") else None,
        intent=intent.strip() or None if isinstance(intent, str) else None,
        tags=tags,
        source=source or default_source,
    )
