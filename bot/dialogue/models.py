"""The models one turn answers with: the NLU model and the Q&A index, taken together when the turn starts.

A running bot can switch to newly promoted versions (:mod:`bot.reload`). The manager reads its current
:class:`Models` once per turn and uses that pair for the whole turn, so no turn is answered half by one
version and half by another; the turns still holding an old pair finish with it, and the old pair is closed
once the last of them is done (:meth:`Models.drained`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from bot.turns import Versions
from bot.understanding import Retriever, Understander


@dataclass(eq=False)
class Models:
    """An NLU model and an optional Q&A index, with the number of turns using them right now."""

    nlu: Understander
    retriever: Retriever | None = None
    _in_use: int = field(default=0, init=False, repr=False)
    _idle: asyncio.Event | None = field(default=None, init=False, repr=False)

    def versions(self) -> Versions:
        """The versions and creation times of this pair (what a turn's details and transcript record)."""
        retriever = self.retriever
        return Versions(self.nlu.version, retriever.version if retriever is not None else "",
                        self.nlu.created, retriever.created if retriever is not None else "")

    @contextlib.contextmanager
    def in_use(self) -> Iterator[Models]:
        """Count one turn as using this pair while the block runs."""
        self._in_use += 1
        try:
            yield self
        finally:
            self._in_use -= 1
            if self._in_use == 0 and self._idle is not None:
                self._idle.set()

    @property
    def turns_in_flight(self) -> int:
        return self._in_use

    async def drained(self, timeout: float | None = None) -> bool:
        """Wait until no turn uses this pair (True), or ``timeout`` seconds (False)."""
        if self._in_use == 0:
            return True
        self._idle = self._idle or asyncio.Event()
        self._idle.clear()
        try:
            async with asyncio.timeout(timeout):
                while self._in_use:
                    await self._idle.wait()
                    self._idle.clear()
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Finish the model calls in flight and release both models."""
        await self.nlu.close()
        if self.retriever is not None:
            await self.retriever.close()


__all__ = ["Models"]
