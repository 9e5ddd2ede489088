"""Sections ``bot``, ``server`` and ``channels`` of the config file: the assistant, its files, how it is served.

The whole configuration, composed of these and the other packages' sections, is
:class:`csbot.settings.Config`. Paths may start with ``{home}`` (runtime files, see :mod:`csbot.home`) or
``{configs}`` (the packaged default config and demo); other relative paths start at the config file's folder.
"""

from __future__ import annotations

from typing import Any, Literal

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


class HandoffWebhookConfig(BaseModel):
    """Section ``server.agents.handoff_webhook``: a helpdesk URL told (POST, JSON) when a conversation is handed over."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, description="the helpdesk's URL; none: nobody is notified")
    secret_env: str | None = Field(None, description="environment variable holding the key that signs each "
                                                     "notification (HMAC-SHA256 of the body)")
    timeout_seconds: float = Field(5.0, gt=0, description="one delivery attempt gives up after this long")
    max_attempts: int = Field(3, ge=1, description="attempts per notification (5xx, 429 and failed connections retried)")


class AgentsConfig(BaseModel):
    """Section ``server.agents``: the API people use to take handed-over conversations, and the hand-over webhook."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="mount /conversations (refused with 503 while token_env is unset)")
    token_env: str = Field("CSBOT_AGENT_TOKEN", min_length=1,
                           description="environment variable holding the agents' bearer token")
    handoff_webhook: HandoffWebhookConfig = Field(default_factory=HandoffWebhookConfig)


class ServerConfig(BaseModel):
    """Section ``server``: where ``csbot serve`` listens, what requests it takes, how many workers (sharing Redis)."""

    model_config = ConfigDict(extra="forbid")

    workers: int = Field(1, ge=1, description="worker processes; more than one needs sessions.store: redis")
    host: str = Field("127.0.0.1", min_length=1, description="the address to listen on (0.0.0.0: every interface)")
    port: int = Field(5005, ge=0, le=65535, description="the TCP port to listen on (0: any free port)")
    max_body_bytes: int = Field(64 * 1024, gt=0, description="a request body larger than this is refused (413)")
    max_text_chars: int = Field(4000, gt=0, description="a message's text is cut to this many characters")
    torch_threads: int | None = Field(None, ge=1, description="torch threads per worker; none: the machine's "
                                                             "cores shared out among the workers")
    batch_window_ms: float = Field(2.0, ge=0, description="concurrent turns' model calls gathered this long "
                                                          "into one batch")
    max_batch: int = Field(32, ge=1, description="the most messages in one NLU or embedding batch (1: no batching)")
    max_queued_turns: int = Field(512, ge=1, description="turns in flight per worker; beyond: 503 with Retry-After")
    retry_after_seconds: int = Field(1, ge=1, description="the Retry-After of a 503 (overloaded) or 429 answer")
    rate_limit_per_minute: int = Field(120, ge=0, description="messages one sender may send per minute, across "
                                                              "workers (in Redis with the Redis store); 0: no limit")
    event_loop: Literal["auto", "asyncio", "uvloop"] = Field(
        "auto", description="auto: uvloop where it is installed (Linux, macOS), else asyncio's own loop")
    agents: AgentsConfig = Field(default_factory=AgentsConfig)
    admin_token_env: str = Field("CSBOT_ADMIN_TOKEN", min_length=1,
                                 description="environment variable holding the bearer token of /admin/* (switching "
                                             "to newly promoted versions); unset: those routes answer 503")


#: Section ``channels``: each channel's name (``rest``, ``slack``, a dotted path) mapped to its own section (empty:
#: every default), validated against that channel's ``config_model`` when ``csbot serve`` builds it.
ChannelsConfig = dict[str, dict[str, Any] | None]


__all__ = ["AgentsConfig", "BotConfig", "ChannelsConfig", "HandoffWebhookConfig", "ServerConfig"]
