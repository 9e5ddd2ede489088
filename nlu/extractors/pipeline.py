"""The entity pipeline: the configured extractors and synonyms, added to what the tagger found.

:meth:`EntityPipeline.augment` runs on every turn, after the model's parse::

    pipeline = EntityPipeline.from_config(config.nlu, config.paths.entity_patterns)   # once
    parse = pipeline.augment(parse, now)                                               # per turn

Rules, in order:

1. Each extractor looks at the first :data:`MAX_TEXT_CHARS` characters of the message (a longer message's
   tail is not searched; the tagger sees even less).
2. Extractors' entities that overlap each other: the one of the extractor listed first wins (the patterns
   file's, then ``nlu.builtin_entities`` in order: by default ``email``, ``url``, ``phone``, ``amount``,
   ``date``, ``time``, ``order_code``, ``number``), the longer one within one extractor. So "50" in
   "50 bucks" is an amount, not also a number, and "3" in "3pm" is a time.
3. The tagger's span wins over an extractor's that overlaps it. When both have the same entity name, the
   tagger's span is kept and takes the extractor's normalised value.
4. Synonyms apply to every entity: a value (or normalised value) that is a variant gets its canonical value
   as ``normalized``; ``value`` stays the text of the span.

The entities come back sorted by start offset. Each extractor's time is recorded (:meth:`EntityPipeline.timings`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from nlu.extractors.base import DEFAULT_BUILTINS, ENTITY_EXTRACTORS, EntityExtractor
from nlu.extractors.patterns import PatternExtractor, PatternSet, load_pattern_files
from nlu.schema import ParsedEntity, ParseResult

log = logging.getLogger(__name__)

#: Extractors look at no more than this many characters of a message.
MAX_TEXT_CHARS = 2000

#: A message that exercises every built-in once, so libraries are imported before the first customer turn.
_WARM_UP = "mail a@b.co, www.example.com, +1 415 555 2671, $5 on 2026-12-07, next monday at 3pm, 48213, twenty"


@dataclasses.dataclass
class ExtractorTiming:
    """How long one extractor took over the messages it saw."""

    calls: int = 0
    total_seconds: float = 0.0
    max_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        mean = self.total_seconds / self.calls if self.calls else 0.0
        return {"calls": self.calls, "mean_us": round(mean * 1e6, 1), "max_us": round(self.max_seconds * 1e6, 1),
                "total_s": round(self.total_seconds, 6)}


class EntityPipeline:
    """Extractors (the first listed wins an overlap) and synonyms, applied to a parse by :meth:`augment`."""

    def __init__(self, extractors: Sequence[EntityExtractor], patterns: PatternSet | None = None) -> None:
        self.extractors = list(extractors)
        self.patterns = patterns or PatternSet()
        self._timings = {self._key(i, x): ExtractorTiming() for i, x in enumerate(self.extractors)}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, nlu_config: Any, patterns_paths: Iterable[str | Path] = (), warm_up: bool = True
                    ) -> EntityPipeline:
        """The pipeline of ``nlu.builtin_entities`` (names or dotted paths, resolved by
        :data:`~nlu.extractors.base.ENTITY_EXTRACTORS`) and the patterns files (resolved paths, e.g.
        ``config.paths.entity_patterns``); a pattern extractor comes first when the files declare entities.
        ``warm_up`` runs every extractor once, so that no customer's turn pays for a library's import."""
        patterns = load_pattern_files(patterns_paths)
        extractors: list[EntityExtractor] = []
        if patterns.regexes or patterns.lookups:
            extractors.append(PatternExtractor(patterns))
        names = getattr(nlu_config, "builtin_entities", DEFAULT_BUILTINS)
        extractors.extend(ENTITY_EXTRACTORS.resolve(name)() for name in names)
        pipeline = cls(extractors, patterns)
        if warm_up:
            pipeline.extract(_WARM_UP, datetime.now())
            pipeline.reset_timings()
        return pipeline

    @staticmethod
    def _key(index: int, extractor: EntityExtractor) -> str:
        return extractor.name or f"{type(extractor).__name__}#{index}"

    # -- per turn --------------------------------------------------------------------------------
    def extract(self, text: str, now: datetime) -> list[ParsedEntity]:
        """Every extractor's entities in ``text``, overlaps between them resolved (rule 2), sorted by start."""
        text = text[:MAX_TEXT_CHARS]
        ranked: list[tuple[int, ParsedEntity]] = []
        for index, extractor in enumerate(self.extractors):
            started = time.perf_counter()
            try:
                found = extractor.extract(text, now)
            except Exception:  # a plugin's bug must not break the turn; it is logged (log.exception)
                log.exception("entity extractor %s failed on a %d-character message", extractor.name, len(text))
                found = []
            self._record(self._key(index, extractor), time.perf_counter() - started)
            ranked.extend((index, e) for e in found)
        ranked.sort(key=lambda pair: (pair[0], pair[1].start - pair[1].end, pair[1].start))
        kept: list[ParsedEntity] = []
        for _, candidate in ranked:
            if not any(_overlap(candidate, other) for other in kept):
                kept.append(candidate)
        kept.sort(key=lambda e: (e.start, e.end))
        return kept

    def augment(self, parse: ParseResult, now: datetime) -> ParseResult:
        """``parse`` with the extractors' entities added and synonyms applied (rules 3 and 4 above); ``parse``
        itself is left unchanged. ``now`` is the message's time: relative dates resolve against it."""
        model = [dataclasses.replace(e) for e in parse.entities]
        added = []
        for found in self.extract(parse.text, now):
            overlapping = [m for m in model if _overlap(found, m)]
            if not overlapping:
                added.append(found)
                continue
            for tagged in overlapping:
                if tagged.entity == found.entity and tagged.normalized is None:
                    tagged.normalized = found.normalized
        entities = sorted(model + added, key=lambda e: (e.start, e.end))
        for entity in entities:
            self._apply_synonym(entity)
        return dataclasses.replace(parse, entities=entities)

    def _apply_synonym(self, entity: ParsedEntity) -> None:
        if not self.patterns.synonyms:
            return
        for value in (entity.normalized, entity.value):
            if isinstance(value, str):
                canonical = self.patterns.synonym(value)
                if canonical is not None:
                    entity.normalized = canonical
                    return

    # -- timings ---------------------------------------------------------------------------------
    def _record(self, key: str, seconds: float) -> None:
        with self._lock:
            timing = self._timings.setdefault(key, ExtractorTiming())
            timing.calls += 1
            timing.total_seconds += seconds
            timing.max_seconds = max(timing.max_seconds, seconds)

    def timings(self) -> dict[str, dict[str, Any]]:
        """Per extractor: calls, mean and max microseconds, total seconds (since start or the last reset)."""
        with self._lock:
            return {key: timing.to_dict() for key, timing in self._timings.items()}

    def reset_timings(self) -> None:
        with self._lock:
            for key in self._timings:
                self._timings[key] = ExtractorTiming()


def _overlap(a: ParsedEntity, b: ParsedEntity) -> bool:
    return a.start < b.end and b.start < a.end


__all__ = ["DEFAULT_BUILTINS", "EntityPipeline", "ExtractorTiming", "MAX_TEXT_CHARS"]
