"""Policies decide the bot's next move; ``create_policy`` picks one by registered name or dotted path."""

from __future__ import annotations

from bot.domain.loader import import_callable
from bot.domain.schema import Domain
from bot.policy.base import Decision, Policy
from bot.policy.rules import RulePolicy
from csbot.errors import ConfigError

POLICIES: dict[str, type[Policy]] = {"rules": RulePolicy}


def create_policy(name: str, domain: Domain) -> Policy:
    """The policy registered as ``name`` or the Policy subclass at dotted path ``name``; anything else raises."""
    cls = POLICIES.get(name)
    if cls is None:
        try:
            cls = import_callable(name)
        except (ImportError, AttributeError, TypeError, ValueError) as exc:
            raise ConfigError(f"unknown policy {name!r}: known {', '.join(POLICIES)} or a dotted path ({exc})") from exc
        if not (isinstance(cls, type) and issubclass(cls, Policy)):
            raise ConfigError(f"policy {name!r} is not a Policy subclass")
    return cls(domain)


__all__ = ["POLICIES", "Decision", "Policy", "RulePolicy", "create_policy"]
