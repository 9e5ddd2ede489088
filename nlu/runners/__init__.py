"""Inference backends: what runs the network on a padded batch (``nlu.backend``).

A backend is a :class:`Runner`; the built-in ones are registered by name in
:data:`csbot.plugins.NLU_BACKENDS` (``torch``, ``onnx``, ``onnx-int8``), and a dotted path to a subclass
of one's own works the same way. The backends' modules import torch or ONNX Runtime, so they load only
when chosen.
"""

from nlu.runners.base import Runner

__all__ = ["Runner"]
