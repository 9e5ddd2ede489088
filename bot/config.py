"""Sections ``bot`` and ``server`` of the config file: the assistant, its files, and how it is served.

The whole configuration, composed of these and the other packages' sections, is
:class:`csbot.settings.Config`. Paths may start with ``{home}`` (runtime files, see :mod:`csbot.home`) or
``{configs}`` (the packaged default config and demo); other relative paths start at the config file's folder.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class BotConfig(BaseModel):
    """Section ``bot``: the assistant's name, where its domain, data and tests live, where its artefacts go."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("Northwind Shop assistant", min_length=1, description="shown by the terminal channel")
    domain: str = "{configs}/demo/domain.yml"
    nlu_data: list[str] = Field(default_factory=lambda: ["{configs}/demo/nlu.yml"])
    qa_data: list[str] = Field(default_factory=lambda: ["{configs}/demo/qa.csv"])
    stories: str = Field("{configs}/demo/stories", description="conversation tests run by `csbot test stories`")
    model_dir: str = "{home}/models/demo"
    index_dir: str = "{home}/models/demo-index"
    model_timeout_seconds: float = Field(30.0, gt=0, description="a parse or a search slower than this: an apology for that turn")


class ServerConfig(BaseModel):
    """Section ``server``: how many worker processes serve the webhooks (they must share Redis)."""

    model_config = ConfigDict(extra="forbid")

    workers: int = Field(1, ge=1, description="worker processes; more than one needs sessions.store: redis")


__all__ = ["BotConfig", "ServerConfig"]
