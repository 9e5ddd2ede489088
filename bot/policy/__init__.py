"""Policies decide the bot's next move; ``create_policy`` picks one by registered name or dotted path."""

from __future__ import annotations

from bot.domain.schema import Domain
from bot.policy.base import REPLY_INTENTS, STOP_INTENTS, Decision, Policy
from bot.policy.rules import RulePolicy
from csbot.plugins import POLICIES


def create_policy(name: str, domain: Domain) -> Policy:
    """The policy registered as ``name`` (:data:`csbot.plugins.POLICIES`) or the Policy subclass at dotted path
    ``name``; anything else is a :class:`~csbot.errors.ConfigError` naming the domain's ``policy`` setting."""
    return POLICIES.resolve(name)(domain)


__all__ = ["REPLY_INTENTS", "STOP_INTENTS", "Decision", "Policy", "RulePolicy", "create_policy"]
