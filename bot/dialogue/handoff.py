"""When the bot cannot help: the fallback, counting the turns in a row it failed, and handing the
conversation over to a person (the domain's hand-over hook tells the agents)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.dialogue.turn import Turn
from bot.domain.schema import Domain
from bot.sessions.state import SessionState
from bot.turns import ReasonCode

log = logging.getLogger(__name__)

#: ``async def hook(session_state, reason)``, called once when a conversation is handed over.
HandoffHook = Callable[[SessionState, str], Awaitable[None]]


class Escalation:
    """The fallback and the hand-over, with the domain's limits (``handoff.max_failures``)."""

    def __init__(self, domain: Domain, hook: HandoffHook | None) -> None:
        self.domain = domain
        self.hook = hook

    async def fail(self, turn: Turn, code: ReasonCode, note: str) -> None:
        """The message was not understood: the fallback (and the slot question again during a form), or
        the hand-over once too many turns in a row failed. ``note`` is used when the turn has none yet."""
        state = turn.state
        turn.decision.because(code, None if turn.decision.note else note)
        state.consecutive_failures += 1
        if state.consecutive_failures >= self.domain.handoff.max_failures:
            await self.hand_over(turn, ReasonCode.REPEATED_FAILURES,
                                 f"{state.consecutive_failures} turns in a row not understood")
            return
        out_of_scope = {ReasonCode.OUT_OF_SCOPE, ReasonCode.OUT_OF_SCOPE_IN_FORM} & set(turn.decision.codes)
        turn.say("out_of_scope" if out_of_scope and "out_of_scope" in self.domain.templates else "fallback")
        turn.source = "fallback"
        if state.requested_slot:  # an unanswered question during a form: back to the slot
            turn.ask(state.requested_slot)

    async def hand_over(self, turn: Turn, code: ReasonCode, reason: str) -> None:
        """A person takes over: forms are dropped, the flag set, the customer told, the hook called."""
        state = turn.state
        state.clear_form()
        state.paused.clear()
        state.handoff = True
        turn.say(self.domain.handoff.template, {"reason": reason})
        turn.source, turn.handoff = "handoff", True
        turn.decision.because(code, f"handoff: {reason}")
        if self.hook is not None:
            try:
                await asyncio.wait_for(self.hook(state, reason), self.domain.action_timeout_seconds)
            except Exception as exc:  # noqa: BLE001 - the customer is told either way
                log.error("hand-over hook failed for session %s: %s: %s", state.session_id, exc.__class__.__name__, exc)
