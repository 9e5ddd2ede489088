"""Q&A sources: JSONL and CSV records, and chat transcripts mined into pairs.

The formats are the entries of :data:`csbot.plugins.QA_SOURCES`; each one's module is imported when it
is first used.
"""

from .base import QASource, detect_source, get_source, load_records, source_formats

__all__ = ["QASource", "detect_source", "get_source", "load_records", "source_formats"]
