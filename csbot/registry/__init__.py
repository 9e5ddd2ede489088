"""Versions of NLU models and Q&A indexes: registered, promoted, rolled back (see ``base.Registry``).

It lives below ``bot`` and ``training`` because both use it: retraining registers and promotes versions, a
running server loads the promoted ones and switches when another is promoted.
"""

from csbot.registry.base import (
    KINDS,
    MANIFEST_KINDS,
    Kind,
    Registry,
    Status,
    VersionEntry,
    artefact_kind,
    gate_refusal,
)
from csbot.registry.config import RegistryConfig
from csbot.registry.directory import DirectoryRegistry
from csbot.registry.factory import REGISTRY_BACKENDS, create_registry

__all__ = [
    "KINDS",
    "MANIFEST_KINDS",
    "REGISTRY_BACKENDS",
    "DirectoryRegistry",
    "Kind",
    "Registry",
    "RegistryConfig",
    "Status",
    "VersionEntry",
    "artefact_kind",
    "create_registry",
    "gate_refusal",
]
