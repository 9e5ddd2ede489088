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

A stored state that cannot be read back (corrupt JSON, or JSON of the wrong shape: a string where a number
belongs) makes ``load`` raise :class:`CorruptStateError`; a turn does not fail on it: ``transaction``
logs a warning naming the session and yields a fresh state whose ``reset_reason`` says why, so the turn
starts the conversation over (and apologises) and its save replaces the bad entry. Nothing else stored is
touched.
"""

from __future__ import annotations

import abc
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

from bot.messages import safe_text
from bot.sessions.state import SessionState
from csbot.errors import CorruptStateError, StoreError

if TYPE_CHECKING:
    from typing import Self

    from bot.sessions.config import SessionsConfig

log = logging.getLogger(__name__)


class SessionStore(abc.ABC):
    """Where conversations live between messages. Backends implement the four abstract methods.

    Errors: :class:`~csbot.errors.StoreUnavailableError` when the backend does not answer,
    :class:`~csbot.errors.LockTimeoutError` when another turn holds the session for too long,
    :class:`CorruptStateError` (from ``load``) when a stored state cannot be read back, which
    ``transaction`` turns into a fresh state (see the module docstring).
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

        An exception inside the block discards the changes (nothing is saved) and still unlocks. A stored
        state that cannot be read back is replaced by a fresh one (:func:`discard_corrupt`).
        """
        async with self.lock(session_id):
            try:
                state = await self.load(session_id)
            except CorruptStateError as exc:
                state = discard_corrupt(session_id, exc)
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
    """Stamp ``updated_at`` and serialise the state as JSON (what every backend stores). A lone surrogate in
    a text (which no UTF-8 store takes) is stored as U+FFFD."""
    state.updated_at = time.time()
    try:
        return safe_text(json.dumps(state.to_dict(copy=False), ensure_ascii=False, separators=(",", ":")))
    except (TypeError, ValueError, RecursionError) as exc:
        raise StoreError(
            f"session {state.session_id!r}: state cannot be stored as JSON ({exc}); slot values must be "
            "strings, numbers, booleans, None, lists or dicts"
        ) from exc


def decode_state(session_id: str, raw: str | bytes, where: str) -> SessionState:
    """Parse stored JSON back into a state, checking the type of every field; a corrupt entry raises
    :class:`CorruptStateError` naming ``where``."""
    try:
        data: Any = json.loads(_without_surrogates(raw.decode("utf-8") if isinstance(raw, bytes) else raw))
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        data["session_id"] = session_id
        return SessionState.from_dict(data)
    except (TypeError, ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise CorruptStateError(
            f"{where}: the stored session state is corrupt ({exc}); reset the session to start it over", session_id
        ) from exc


def _without_surrogates(raw: str) -> str:
    """The JSON text ``raw`` with every lone surrogate, written as is or as a ``\\udc80`` escape, replaced by
    U+FFFD (what :func:`encode_state` stores), so no text of a loaded state fails to encode later. States
    this module wrote hold no escapes (``ensure_ascii=False``): the slow path is for states written by others."""
    raw = safe_text(raw)
    if "\\ud" not in raw and "\\uD" not in raw:
        return raw
    try:
        return safe_text(json.dumps(json.loads(raw), ensure_ascii=False))
    except (ValueError, RecursionError):
        return raw  # not JSON: decode_state reports it


def discard_corrupt(session_id: str, exc: CorruptStateError) -> SessionState:
    """A fresh state in place of one that cannot be read back, with the reason in ``reset_reason``; logged
    as a warning naming the session. What a turn (``transaction``) does with a corrupt state."""
    log.warning("session %r: the stored state cannot be read back, so the conversation starts over: %s",
                session_id, exc)
    state = SessionState(session_id)
    state.reset_reason = str(exc)
    return state
