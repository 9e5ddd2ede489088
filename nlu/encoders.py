"""The NLU side of encoder lookup: re-exports the shared offline resolution from :mod:`csbot.encoders`."""

from csbot.encoders import DEFAULT_ENCODER, encoder_load_error, packaged_default_encoder, resolve_encoder

__all__ = ["DEFAULT_ENCODER", "encoder_load_error", "packaged_default_encoder", "resolve_encoder"]
