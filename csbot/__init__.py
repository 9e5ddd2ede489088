"""Shared core of csbot: the exception tree and the version every artefact records."""

from csbot.errors import CsbotError

__version__ = "0.1.0"
#: Artefacts (models, indexes) record this; a loader reads only artefacts of this format number
#: (:func:`csbot.artefacts.read_manifest` raises IncompatibleArtefactError otherwise).
ARTEFACT_FORMAT = 1

__all__ = ["ARTEFACT_FORMAT", "CsbotError", "__version__"]
