"""The agent API: people take over the conversations the bot handed over, answer, and give them back.

Mounted by :func:`mount_agents` when ``server.agents.enabled`` (the default); every route needs
``Authorization: Bearer <token>``, the token read from the environment variable ``server.agents.token_env``
when the server is built (compared in constant time; missing or wrong: 401). While that variable is unset,
every route answers 503 naming it (and a warning says so once, at start).

- ``GET /conversations`` (or ``?handoff=true``): the conversations handed over and not released, the most
  recently handed over first: ``{"conversations": [{"id", "channel", "recipient_id", "reason",
  "handed_over_at", "turn_count", "last_message"}]}``. Only handed-over conversations are listed (the bot
  keeps no index of every conversation), so ``handoff=false`` or any other value is a 400.
- ``GET /conversations/{id}``: the session's state (``handoff``, ``channel``, ``recipient_id``,
  ``turn_count``, ``active_intent``, ``requested_slot``, ``slots``) and its ``transcript``, turns oldest first
  (agents' turns have source ``agent`` and their ``author``; ``transcript_source`` says where they were read:
  ``redis``, ``jsonl`` or ``none``). 404 for an unknown conversation.
- ``POST /conversations/{id}/messages`` with ``{"author": str, "text": str, "buttons"?: [{"title",
  "payload"}]}``: sent to the customer through the conversation's channel and recorded with its author.
  400 naming the field for a bad body; 404 unknown; 409 when the conversation is not handed over (the bot is
  answering it: it would talk over the agent) or when its channel cannot push (REST); 502 when the channel
  failed to deliver it. Undelivered messages are recorded in the transcript too (source ``undelivered``).
- ``POST /conversations/{id}/release``: the bot answers the conversation again; ``{"released": true,
  "was_listed": bool}``. 404 unknown.

Requests to these routes are labelled ``agents`` in the request metrics.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from bot.conversations import read_transcript
from bot.messages import Button, OutgoingMessage
from bot.server.auth import require_bearer
from bot.server.errors import RequestError, read_json_body
from bot.server.notify import mount_notifier
from csbot.errors import DeliveryError, UnreachableError

if TYPE_CHECKING:
    from bot.config import AgentsConfig
    from bot.server.app import ServerState
    from bot.sessions.state import SessionState

log = logging.getLogger(__name__)

#: The metrics label of the agent API's requests.
AGENTS_LABEL = "agents"

#: A conversation listed but missing from the store for longer than this (it expired) leaves the list.
STALE_AFTER_SECONDS = 60.0


class ButtonBody(BaseModel):
    """A quick reply in an agent's message."""

    model_config = ConfigDict(extra="forbid")

    title: StrictStr = Field(min_length=1)
    payload: StrictStr = Field(min_length=1)


class AgentMessageBody(BaseModel):
    """The body of ``POST /conversations/{id}/messages``."""

    model_config = ConfigDict(extra="forbid")

    author: StrictStr = Field(min_length=1)
    text: StrictStr = Field(min_length=1)
    buttons: list[ButtonBody] = Field(default_factory=list)


def _known(state: SessionState | None) -> bool:
    """Whether the store holds this conversation (a store answers a fresh state for one it does not)."""
    return state is not None and (state.channel is not None or state.turn_count > 0)


def _summary(state: SessionState) -> dict[str, Any]:
    return {"id": state.session_id, "handoff": state.handoff, "channel": state.channel,
            "recipient_id": state.recipient_id, "turn_count": state.turn_count, "active_intent": state.active_intent,
            "requested_slot": state.requested_slot, "slots": dict(state.slots), "updated_at": state.updated_at}


def agent_routes(state: ServerState, token: str | None, token_env: str) -> list[web.RouteDef]:
    """The routes above; ``token`` None: every route answers 503 naming ``token_env``."""
    bot = state.bot

    def check(request: web.Request) -> None:
        require_bearer(request, token, token_env, "agent API")

    async def session_of(request: web.Request) -> SessionState:
        session_id = request.match_info["id"]
        session = await bot.store.load(session_id)
        if not _known(session):
            raise RequestError(404, f"no conversation {session_id!r}")
        return session

    async def listing(request: web.Request) -> web.Response:
        check(request)
        wanted = request.query.get("handoff", "true").lower()
        if wanted != "true":
            raise RequestError(400, "only handed-over conversations are listed: use ?handoff=true (or leave it out)",
                               "handoff")
        out: list[dict[str, Any]] = []
        for info in await bot.handed_over():
            session = await bot.store.load(info.session_id)
            if not _known(session):
                if info.handed_over_at < time.time() - STALE_AFTER_SECONDS:  # expired (its first turn is saved by then)
                    await bot.handoffs.remove(info.session_id)
                continue
            last = next((entry.user for entry in reversed(session.history) if entry.user), info.last_message)
            out.append({"id": info.session_id, "channel": info.channel, "recipient_id": info.recipient_id,
                        "reason": info.reason, "handed_over_at": info.handed_over_at,
                        "turn_count": session.turn_count, "last_message": last})
        return web.json_response({"conversations": out})

    async def conversation(request: web.Request) -> web.Response:
        check(request)
        session = await session_of(request)
        where, turns = await read_transcript(bot.transcripts, session.session_id)
        return web.json_response({**_summary(session), "transcript_source": where,
                                  "transcript": [turn.to_dict(copy=False) for turn in turns]})

    async def post_message(request: web.Request) -> web.Response:
        check(request)
        session = await session_of(request)
        body = await read_json_body(request, AgentMessageBody)
        if not session.handoff:
            raise RequestError(409, f"conversation {session.session_id!r} is not handed over: the bot is answering "
                                    "it (it is taken over when the bot hands it over)")
        message = OutgoingMessage(body.text, [Button(b.title, b.payload) for b in body.buttons])
        try:
            sent = await bot.send_as_agent(session.session_id, body.author, [message])
        except UnreachableError as exc:
            raise RequestError(409, f"cannot reach the customer: {exc}") from exc
        except DeliveryError as exc:
            raise RequestError(502, f"the {session.channel} channel did not deliver the message: {exc}") from exc
        if not sent:
            raise RequestError(404, f"no conversation {session.session_id!r}")
        return web.json_response({"delivered": True, "id": session.session_id, "author": body.author})

    async def release(request: web.Request) -> web.Response:
        check(request)
        session = await session_of(request)
        listed = await bot.release(session.session_id)
        return web.json_response({"released": True, "id": session.session_id, "was_listed": listed})

    return [
        web.get("/conversations", listing, allow_head=False),
        web.get("/conversations/{id}", conversation, allow_head=False),
        web.post("/conversations/{id}/messages", post_message),
        web.post("/conversations/{id}/release", release),
    ]


def mount_agents(app: web.Application, state: ServerState, config: AgentsConfig) -> None:
    """Mount the agent API (when ``config.enabled``), labelled ``agents`` in the metrics, and the hand-over
    webhook (when ``config.handoff_webhook.url`` is set), started and stopped with ``app``."""
    mount_notifier(app, state.bot, config.handoff_webhook)
    if not config.enabled:
        return
    token = os.environ.get(config.token_env) or None
    if token is None:
        log.warning("the agent API answers 503 until the environment variable %s holds the agents' bearer token",
                    config.token_env)
    for route in app.router.add_routes(agent_routes(state, token, config.token_env)):
        state.route_channels[route] = AGENTS_LABEL


__all__ = ["AGENTS_LABEL", "AgentMessageBody", "agent_routes", "mount_agents"]
