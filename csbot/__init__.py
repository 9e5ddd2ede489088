"""Shared core of csbot: the exception tree and the version every artefact records."""

from csbot.errors import CsbotError

__version__ = "0.1.0"
#: Artefacts (models, indexes) record this; a loader accepts any artefact with the same major number.
ARTEFACT_FORMAT = 1

__all__ = ["ARTEFACT_FORMAT", "CsbotError", "__version__"]
