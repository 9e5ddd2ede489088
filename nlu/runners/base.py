"""The inference backend interface: one padded batch in, intent and slot logits and the pooled sentence
vectors out, as numpy."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from nlu.artefact import ModelBundle


class Runner(abc.ABC):
    """Runs a trained network on padded batches; one runner may serve several threads.

    Built by :meth:`from_bundle`, whose signature every backend shares, so :class:`~nlu.inference.NLUModel`
    can build any backend the ``nlu.backend`` setting names.
    """

    #: Where the network runs ("cpu", "cuda:0"), once built.
    device: str = "cpu"

    @classmethod
    @abc.abstractmethod
    def from_bundle(
        cls, bundle: ModelBundle, *, model_dir: str | Path | None = None, device: str = "auto", precision: str = "auto"
    ) -> Runner:
        """A runner for ``bundle``'s network. ``model_dir`` is the directory it was loaded from (None for a
        model only in memory); ``device`` is ``auto``, ``cpu`` or ``cuda[:N]``; ``precision`` is ``auto``,
        ``fp32`` or ``fp16``. A backend ignores what it cannot honour and says so in its docstring."""

    @abc.abstractmethod
    def __call__(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(intent logits ``batch x intents``, slot logits ``batch x pieces x tags``, pooled sentence vectors
        ``batch x hidden``) as float32 numpy; the pooled vectors are what out-of-scope detection compares
        with the training examples'."""
