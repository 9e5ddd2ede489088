"""Retrieval over historical Q&A (the FAISS index); built in a later issue."""
