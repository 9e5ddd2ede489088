"""Q&A sources: JSONL and CSV records, and chat transcripts mined into pairs."""

from . import qa_csv, qa_jsonl, transcripts  # noqa: F401 (registers the sources)
from .base import QASource, detect_source, load_records, register_source, source_formats

__all__ = ["QASource", "detect_source", "load_records", "register_source", "source_formats"]
