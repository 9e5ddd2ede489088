"""Session store options: section ``sessions`` of ``configs/default.yaml``, then ``CSBOT_REDIS_URL``, then flags."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

#: Environment variable that overrides ``sessions.url`` (set per deployment, kept out of config files).
REDIS_URL_ENV = "CSBOT_REDIS_URL"


class SessionsConfig(BaseModel):
    """Which session store to use and how long sessions and their turn locks live."""

    model_config = ConfigDict(extra="forbid")

    store: str = Field(
        "memory", min_length=1, description="memory | redis | a SessionStore subclass as package.module:Class"
    )
    url: str = Field(
        "redis://127.0.0.1:6379/0", min_length=1,
        description="Redis URL (redis store): redis://[:password@]host:port/db for one server, "
                    "redis+cluster://[:password@]host1:port1,host2:port2 for a Redis Cluster",
    )
    namespace: str = Field(
        "csbot", pattern=r"^[^\s:]+$",
        description="key prefix, so bots can share a Redis (no braces: a cluster hash tag follows it)",
    )
    ttl_seconds: int = Field(86400, gt=0, description="a session untouched this long is forgotten")
    lock_timeout_seconds: float = Field(10, gt=0, description="a turn lock expires after this long")
    lock_wait_seconds: float = Field(15, ge=0, description="a turn waits this long for a locked session")
    socket_timeout_seconds: float = Field(2, gt=0, description="Redis connect and command timeout")
