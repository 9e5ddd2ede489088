"""The one exception tree of csbot.

Every error a user can act on derives from :class:`CsbotError`; third-party errors are translated at
the boundary with ``raise ... from exc`` so the CLI can print one clear line and exit non-zero.

::

    CsbotError
    ├── ConfigError                  a config file or option is invalid
    ├── DataError                    training / Q&A data cannot be read (file, line, reason)
    │   ├── UnknownFormatError       no importer recognises the file, or the format name is unknown
    │   └── EntitySpanError          an entity's offsets do not match its text
    ├── ModelError                   a model cannot be built, loaded or used
    │   ├── ArtefactError            a file of a saved artefact is missing or corrupt (names the file)
    │   │   └── IncompatibleArtefactError   saved by an incompatible csbot version
    │   └── EncoderNotFoundError     the base encoder name or path cannot be resolved offline
    ├── TrainingError                training cannot proceed (no data, bad split, diverged)
    ├── RetrievalError               the Q&A index cannot be built, changed or searched
    │   ├── EmbeddingMismatchError   the index was built with another embedding model than configured
    │   └── UnknownRecordError       a Q&A record id is not in the index
    ├── StoreError                   session state or transcripts cannot be read or written
    │   ├── StoreUnavailableError    the store (Redis) does not answer or fails mid-conversation
    │   ├── LockTimeoutError         a session stayed locked by another turn for too long
    │   └── CorruptStateError        a stored session state cannot be read back (the turn starts over)
    ├── DeliveryError                a message could not be delivered to a customer through its channel
    │   └── UnreachableError         the channel cannot reach a customer outside a request (REST has no push)
    └── RegistryError                the model registry cannot be read or written, or a version is unknown
        ├── UnknownVersionError      no version of that name (or nothing promoted yet) in the registry
        └── PromotionRefusedError    the candidate is worse than the current version beyond the tolerance
"""

from __future__ import annotations

from pathlib import Path


class CsbotError(Exception):
    """Base of every error csbot raises on purpose; its message is meant for the user."""

    exit_code = 1


class ConfigError(CsbotError):
    """A configuration file or option is invalid."""

    exit_code = 2


class DataError(CsbotError):
    """Data cannot be read; names the file and, when known, the line."""

    exit_code = 3

    def __init__(self, reason: str, path: str | Path | None = None, line: int | None = None) -> None:
        self.reason = reason
        self.path = Path(path) if path is not None else None
        self.line = line
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(f"{where}{reason}")


class UnknownFormatError(DataError):
    """No importer recognises the data, or an unknown format name was given."""


class EntitySpanError(DataError):
    """An entity's start/end offsets do not select its stated value in the text."""


class ModelError(CsbotError):
    """A model cannot be built, loaded or used."""

    exit_code = 4


class ArtefactError(ModelError):
    """A saved artefact has a missing or corrupt file; the message names it."""

    def __init__(self, reason: str, path: str | Path) -> None:
        self.reason = reason
        self.path = Path(path)
        super().__init__(f"{self.path}: {reason}")


class IncompatibleArtefactError(ArtefactError):
    """The artefact was written by a csbot version whose format this one cannot read."""


class EncoderNotFoundError(ModelError):
    """The base encoder cannot be found locally and nothing may be downloaded."""


class TrainingError(CsbotError):
    """Training cannot proceed: no data, an impossible split, a diverged loss."""

    exit_code = 5


class RetrievalError(CsbotError):
    """The Q&A index cannot be built, changed or searched."""

    exit_code = 6


class EmbeddingMismatchError(RetrievalError):
    """The index's vectors come from another embedding model than the one configured; names the file."""

    def __init__(self, reason: str, path: str | Path) -> None:
        self.reason = reason
        self.path = Path(path)
        super().__init__(f"{self.path}: {reason}")


class UnknownRecordError(RetrievalError):
    """A Q&A record id given to remove or look up is not in the index."""


class StoreError(CsbotError):
    """Session state or transcripts cannot be read or written."""

    exit_code = 7


class StoreUnavailableError(StoreError):
    """The store does not answer (at start-up, or mid-conversation); names the URL without its password."""


class LockTimeoutError(StoreError):
    """Another turn of the same session held its lock for longer than the lock timeout."""


class CorruptStateError(StoreError):
    """A stored session state cannot be read back (a :class:`StoreError`): not JSON, or JSON
    of the wrong shape. ``session_id`` names the session."""

    def __init__(self, message: str, session_id: str) -> None:
        super().__init__(message)
        self.session_id = session_id


class DeliveryError(CsbotError):
    """A message could not be delivered to a customer: the platform refused it, or it kept failing after
    every retry. The channel's own errors (Slack, Telegram) derive from it, so the app can record the reason."""


class UnreachableError(DeliveryError):
    """The conversation's channel cannot reach the customer outside a request (REST answers only in the
    response to the customer's own message), or no channel is registered for it."""



class RegistryError(CsbotError):
    """The model registry (a directory, or Redis keys) cannot be read or written; what is promoted is unchanged."""

    exit_code = 8


class UnknownVersionError(RegistryError):
    """A version the registry does not hold, or nothing promoted to roll back to."""


class PromotionRefusedError(RegistryError):
    """The gate refused to promote a candidate (worse than the current version beyond the tolerance); ``--force``
    promotes it anyway."""

    exit_code = 9


__all__ = [
    "ArtefactError",
    "ConfigError",
    "CorruptStateError",
    "CsbotError",
    "DataError",
    "DeliveryError",
    "EmbeddingMismatchError",
    "EncoderNotFoundError",
    "EntitySpanError",
    "IncompatibleArtefactError",
    "LockTimeoutError",
    "ModelError",
    "PromotionRefusedError",
    "RegistryError",
    "RetrievalError",
    "StoreError",
    "StoreUnavailableError",
    "TrainingError",
    "UnknownFormatError",
    "UnknownRecordError",
    "UnknownVersionError",
    "UnreachableError",
]
