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


def decode_entities(
    text: str,
    offsets: Sequence[tuple[int, int]],
    word_ids: Sequence[int | None],
    tag_probs: np.ndarray,
    labels: LabelMaps,
) -> list[ParsedEntity]:
    """Spans from per-piece tag probabilities (pieces x tags), read at each word's first piece."""
    entities: list[ParsedEntity] = []
    span: list[int] | None = None  # [start, end, first_word_index, last_word_index]
    span_type = ""
    confidences: list[float] = []

    def close() -> None:
        if span is not None:
            start, end = span[0], span[1]
            entities.append(
                ParsedEntity(span_type, text[start:end], start, end, float(np.mean(confidences)))
            )

    for word in words_of(offsets, word_ids):
        probs = tag_probs[word.first_piece]
        tag = labels.tags[int(np.argmax(probs))]
        confidence = float(np.max(probs))
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
