"""Section ``registry``: where model and index versions are kept, how a retrained candidate is gated, how a
running server learns that another version was promoted."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RegistryConfig(BaseModel):
    """Section ``registry`` (off while ``path`` is empty: the bot loads ``bot.model_dir`` and ``bot.index_dir``)."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(None, description="the registry directory ({home}, {configs} and ~ expand; relative "
                                               "to the config file); empty: no registry")
    backend: str = Field("directory", description="a registered registry backend or package.module:Class")
    tolerance: float = Field(0.005, ge=0, le=1, description="a candidate is promoted only when its primary metric "
                                                            "is at most this much below the current version's, "
                                                            "on the dev set and on the regression set")
    watch_seconds: float = Field(2.0, ge=0, description="how often a running server checks the registry for a "
                                                        "newly promoted version (0: only when told, by the admin "
                                                        "endpoint or Redis)")
    redis_channel: str = Field("registry", description="pub/sub channel (under sessions.namespace) that tells every "
                                                       "worker sharing the Redis of sessions to switch at once")
