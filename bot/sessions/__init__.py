"""Session state and where it is kept between messages: in memory (one process) or in Redis (shared).

``create_store(config.sessions)`` builds the store a :class:`csbot.settings.Config` names. Redis is imported only when the
Redis store is used, so importing this package stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.sessions.base import SessionStore
from bot.sessions.config import SessionsConfig
from bot.sessions.factory import create_store
from bot.sessions.memory import MemorySessionStore
from bot.sessions.state import SessionState

if TYPE_CHECKING:
    from bot.sessions.redis import RedisSessionStore

__all__ = [
    "MemorySessionStore",
    "RedisSessionStore",
    "SessionState",
    "SessionStore",
    "SessionsConfig",
    "create_store",
]


def __getattr__(name: str) -> Any:
    """``RedisSessionStore`` on first use, importing redis-py only then."""
    if name == "RedisSessionStore":
        from bot.sessions.redis import RedisSessionStore

        return RedisSessionStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
