"""Retrieval: Q&A records, sentence embeddings, a FAISS index (GPU when present), search with scores.

Knows nothing of ``bot`` or ``nlu``; torch, sentence-transformers and faiss load only when used.
"""

from retrieval.config import RetrievalConfig
from retrieval.records import Hit, Provenance, QARecord, SearchResult

__all__ = ["Hit", "Provenance", "QAIndex", "QARecord", "RetrievalConfig", "SearchResult"]


def __getattr__(name: str):
    if name == "QAIndex":  # imported lazily: it pulls in numpy and the embedding model's code
        from retrieval.qa_index import QAIndex

        return QAIndex
    raise AttributeError(name)
