"""The session store interface: load, save and delete one conversation's state, and lock it per turn.

A turn of the dialogue manager is::

    async with store.lock(session_id):
        state = await store.load(session_id)
        ...                                   # decide, render, mutate ``state``
        await store.save(state)

The lock serialises concurrent turns of one session (two messages sent quickly, several workers), so no
update is lost. ``transaction`` wraps the three steps in one context manager; a backend may override it
to do them in fewer round trips (Redis takes the lock and reads the state in one script, and writes the
state and releases the lock in another). Every backend stores the state as JSON, so what ``load``
returns is always a copy.
"""

from __future__ import annotations

import abc
import json
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

from bot.sessions.state import SessionState
from csbot.errors import StoreError

if TYPE_CHECKING:
    from typing import Self

    from bot.sessions.config import SessionsConfig


class SessionStore(abc.ABC):
    """Where conversations live between messages. Backends implement the four abstract methods.

    Errors: :class:`~csbot.errors.StoreUnavailableError` when the backend does not answer,
    :class:`~csbot.errors.LockTimeoutError` when another turn holds the session for too long,
    :class:`~csbot.errors.StoreError` when a stored state cannot be read back.
    """

    @classmethod
    def from_config(cls, config: SessionsConfig) -> Self:
        """Build the store from the ``sessions`` config section (``create_store`` calls this)."""
        return cls()

    @abc.abstractmethod
    async def load(self, session_id: str) -> SessionState:
        """The stored state, or a fresh ``SessionState(session_id)`` when none is stored (or it expired)."""

    @abc.abstractmethod
    async def save(self, state: SessionState) -> None:
        """Store ``state`` as JSON, set its ``updated_at`` and restart its time to live."""

    @abc.abstractmethod
    async def delete(self, session_id: str) -> None:
        """Forget the session; deleting one that is not stored is not an error."""

    @abc.abstractmethod
    def lock(self, session_id: str) -> AbstractAsyncContextManager[None]:
        """An async context manager held for one turn, so turns of one session run one at a time."""

    @asynccontextmanager
    async def transaction(self, session_id: str) -> AsyncIterator[SessionState]:
        """One turn: lock, yield the loaded state, save it on a clean exit and unlock.

        An exception inside the block discards the changes (nothing is saved) and still unlocks.
        """
        async with self.lock(session_id):
            state = await self.load(session_id)
            yield state
            await self.save(state)

    async def reset(self, session_id: str) -> None:
        """Start the conversation over (the next ``load`` gives a fresh state)."""
        await self.delete(session_id)

    async def start(self) -> None:
        """Check that the backend answers; raise :class:`~csbot.errors.StoreUnavailableError` if not."""

    async def close(self) -> None:
        """Release connections; the store is not used afterwards."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def encode_state(state: SessionState) -> str:
    """Stamp ``updated_at`` and serialise the state as JSON (what every backend stores)."""
    state.updated_at = time.time()
    try:
        return json.dumps(state.to_dict(copy=False), ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"session {state.session_id!r}: state cannot be stored as JSON ({exc}); slot values must be "
            "strings, numbers, booleans, None, lists or dicts"
        ) from exc


def decode_state(session_id: str, raw: str | bytes, where: str) -> SessionState:
    """Parse stored JSON back into a state; a corrupt entry raises :class:`StoreError` naming ``where``."""
    try:
        data: Any = json.loads(raw)
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        data["session_id"] = session_id
        return SessionState.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"{where}: the stored session state is corrupt ({exc}); reset the session to start it over"
        ) from exc
