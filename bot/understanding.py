"""What the dialogue manager asks of the models: parse a message, search past answers. Both batched."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.batching import MicroBatcher

if TYPE_CHECKING:
    from nlu.inference import NLUModel
    from nlu.schema import ParseResult
    from retrieval.qa_index import QAIndex
    from retrieval.records import SearchResult


class Understander(abc.ABC):
    """Turns a message's text into a parse result (DESIGN.md)."""

    @abc.abstractmethod
    async def parse(self, text: str) -> ParseResult:
        """The intent, its ranking, entities and the out-of-scope flag."""

    @property
    def version(self) -> str:
        """The model artefact's version (its manifest's ``version``), for transcripts; "" when unknown."""
        return ""

    @property
    def created(self) -> str:
        """When the model artefact was made (ISO-8601 UTC), for transcripts; "" when unknown."""
        return ""

    @property
    def intents(self) -> list[str]:
        """Every intent the model can predict."""
        return []

    async def close(self) -> None:
        """Finish the parses in flight (the bot is stopping); nothing new is submitted afterwards."""

    def observe_batches(self, callback: Callable[[int], object] | None) -> None:
        """Have ``callback(size)`` called as each batched model call starts (metrics); no-op when not batched."""


class Retriever(abc.ABC):
    """Finds past answers close to a message."""

    @abc.abstractmethod
    async def search(self, text: str, k: int | None = None) -> SearchResult:
        """The closest Q&A entries with scores and the answered / ambiguous verdicts."""

    @property
    def version(self) -> str:
        """The index artefact's version, for transcripts; "" when unknown."""
        return ""

    @property
    def created(self) -> str:
        """When the index was built (ISO-8601 UTC); "" when unknown."""
        return ""

    async def close(self) -> None:
        """Finish the searches in flight (the bot is stopping)."""

    def observe_batches(self, callback: Callable[[int], object] | None) -> None:
        """Have ``callback(size)`` called as each batched model call starts (metrics); no-op when not batched."""


class ModelUnderstander(Understander):
    """An :class:`~nlu.inference.NLUModel` behind a micro-batcher, run off the event loop."""

    def __init__(self, model: NLUModel, max_batch: int = 32, max_wait_ms: float = 2.0) -> None:
        self.model = model
        self._batcher: MicroBatcher[str, Any] = MicroBatcher(model.parse, max_batch, max_wait_ms)

    async def parse(self, text: str) -> ParseResult:
        return await self._batcher.submit(text)

    async def close(self) -> None:
        await self._batcher.drain()

    def observe_batches(self, callback: Callable[[int], object] | None) -> None:
        self._batcher.on_batch = callback

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def created(self) -> str:
        return self.model.info.created_iso if self.model.info is not None else ""

    @property
    def intents(self) -> list[str]:
        return list(self.model.labels.intents)


class IndexRetriever(Retriever):
    """A :class:`~retrieval.qa_index.QAIndex` behind a micro-batcher, run off the event loop."""

    def __init__(self, index: QAIndex, k: int | None = None, max_batch: int = 64, max_wait_ms: float = 2.0) -> None:
        self.index = index
        self.k = k
        self._batcher: MicroBatcher[str, Any] = MicroBatcher(lambda texts: index.search(texts, self.k), max_batch, max_wait_ms)

    async def search(self, text: str, k: int | None = None) -> SearchResult:
        return await self._batcher.submit(text)

    async def close(self) -> None:
        await self._batcher.drain()

    def observe_batches(self, callback: Callable[[int], object] | None) -> None:
        self._batcher.on_batch = callback

    @property
    def version(self) -> str:
        return self.index.version

    @property
    def created(self) -> str:
        return self.index.info.created_iso if self.index.info is not None else ""
