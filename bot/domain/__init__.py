"""The bot's domain: intents, slots, templates, thresholds and hand-over rules, read from YAML and checked."""

from bot.domain.loader import DomainError, check_against_model, check_domain, import_callable, load_domain
from bot.domain.schema import ButtonSpec, Domain, HandoffSpec, IntentSpec, SlotSpec, Thresholds, VariantSpec

__all__ = [
    "ButtonSpec", "Domain", "DomainError", "HandoffSpec", "IntentSpec", "SlotSpec", "Thresholds", "VariantSpec",
    "check_against_model", "check_domain", "import_callable", "load_domain",
]
