"""The dialogue: :class:`DialogueManager` answers each message of many concurrent conversations.

Modules: ``manager`` (the turn: lock, decide, save, transcript), ``forms`` (slots, confirmation, actions,
topic switches), ``answers`` (retrieval and clarification), ``handoff`` (fallback and hand-over) and
``turn`` (what one turn accumulates). What led to a reply is :class:`bot.turns.TurnDetails`.
"""

from __future__ import annotations

from bot.dialogue.handoff import HandoffHook
from bot.dialogue.manager import DialogueManager

__all__ = ["DialogueManager", "HandoffHook"]
