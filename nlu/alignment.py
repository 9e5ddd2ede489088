"""Aligning word pieces to character offsets, both ways.

Training: each entity's character span becomes BIO tags on the word pieces that cover it. Inference:
tags predicted per word are turned back into spans whose ``start``/``end`` index the original text, so
values come back exactly as the customer wrote them whatever the tokeniser lowercased or stripped.

A *word* is what the tokeniser's pre-tokeniser yields (for BERT: runs split at whitespace and
punctuation); its first piece carries the word's tag, later pieces carry the ``I-`` form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from nlu.labels import LabelMaps
from nlu.schema import EntitySpan, ParsedEntity

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Word:
    """One pre-tokenised word: its first piece's index and its character span in the text."""

    first_piece: int
    last_piece: int
    start: int
    end: int


def words_of(offsets: Sequence[tuple[int, int]], word_ids: Sequence[int | None]) -> list[Word]:
    """Group pieces into words, skipping special tokens and pieces that cover no characters."""
    words: list[Word] = []
    current: int | None = None
    for index, (word_id, (start, end)) in enumerate(zip(word_ids, offsets)):
        if word_id is None or end <= start:
            continue
        if word_id == current and words:
            last = words[-1]
            words[-1] = Word(last.first_piece, index, min(last.start, start), max(last.end, end))
        else:
            words.append(Word(index, index, start, end))
            current = word_id
    return words


def word_tags(words: Sequence[Word], entities: Sequence[EntitySpan]) -> list[str]:
    """BIO tag per word: a word overlapping an entity is tagged with it, B- on the entity's first word."""
    tags = ["O"] * len(words)
    for ent in sorted(entities, key=lambda e: e.start):
        first = True
        for i, word in enumerate(words):
            if word.start < ent.end and word.end > ent.start and tags[i] == "O":
                tags[i] = f"{'B' if first else 'I'}-{ent.entity}"
                first = False
    return tags


def piece_tag_ids(
    offsets: Sequence[tuple[int, int]],
    word_ids: Sequence[int | None],
    entities: Sequence[EntitySpan],
    labels: LabelMaps,
) -> list[int]:
    """Training targets per piece: the word's tag on its first piece, its I- form on the rest."""
    targets = [IGNORE_INDEX] * len(offsets)
    words = words_of(offsets, word_ids)
    for word, tag in zip(words, word_tags(words, entities)):
        targets[word.first_piece] = labels.tag_id(tag)
        inside = labels.tag_id("I-" + tag[2:]) if tag != "O" else labels.tag_id("O")
        for piece in range(word.first_piece + 1, word.last_piece + 1):
            if word_ids[piece] is not None:
                targets[piece] = inside
    return targets


@lru_cache(maxsize=32)
def _allowed_transitions(tags: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Log-space penalties of BIO: ``I-x`` may only follow ``B-x`` or ``I-x``, and may not start a text."""
    slot = np.array([t[2:] if t != "O" else "" for t in tags])
    inside = np.array([t.startswith("I-") for t in tags])
    ok = ~inside[None, :] | ((slot[:, None] == slot[None, :]) & (slot[:, None] != ""))
    transitions = np.where(ok, 0.0, -np.inf)
    start = np.where(inside, -np.inf, 0.0)
    return transitions, start


def best_tag_path(log_probs: np.ndarray, tags: Sequence[str]) -> list[int]:
    """The most probable tag sequence (words x tags log-probabilities) that is valid BIO (Viterbi).

    Greedy per-word argmax can yield ``O I-x`` or ``B-x I-y``; a valid path keeps each span whole.
    """
    transitions, start = _allowed_transitions(tuple(tags))
    score = start + log_probs[0]
    back: list[np.ndarray] = []
    for row in log_probs[1:]:
        candidates = score[:, None] + transitions
        back.append(candidates.argmax(axis=0))
        score = candidates.max(axis=0) + row
    path = [int(score.argmax())]
    for pointers in reversed(back):
        path.append(int(pointers[path[-1]]))
    path.reverse()
    return path


def decode_entities(
    text: str,
    offsets: Sequence[tuple[int, int]],
    word_ids: Sequence[int | None],
    tag_probs: np.ndarray,
    labels: LabelMaps,
    constrained: bool = True,
) -> list[ParsedEntity]:
    """Spans from per-piece tag probabilities (pieces x tags), read at each word's first piece.

    ``constrained`` picks the best valid BIO sequence over the whole text; without it each word takes
    its own most probable tag (an ``I-`` that continues nothing then opens a new span).
    """
    words = words_of(offsets, word_ids)
    if not words:
        return []
    probs = np.stack([tag_probs[word.first_piece] for word in words])
    if constrained:
        path = best_tag_path(np.log(np.clip(probs, 1e-12, None)), labels.tags)
    else:
        path = [int(i) for i in probs.argmax(axis=1)]

    entities: list[ParsedEntity] = []
    span: list[int] | None = None  # [start, end]
    span_type = ""
    confidences: list[float] = []

    def close() -> None:
        if span is not None:
            start, end = span
            entities.append(ParsedEntity(span_type, text[start:end], start, end, float(np.mean(confidences))))

    for row, (word, tag_index) in enumerate(zip(words, path)):
        tag = labels.tags[tag_index]
        confidence = float(probs[row, tag_index])
        if tag == "O":
            close()
            span = None
            continue
        prefix, slot = tag[0], tag[2:]
        if prefix == "I" and span is not None and slot == span_type:
            span[1] = word.end
            confidences.append(confidence)
            continue
        close()
        span, span_type, confidences = [word.start, word.end], slot, [confidence]
    close()
    return entities
