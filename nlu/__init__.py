"""Natural-language understanding: the joint intent + slot model, its artefact and batched inference.

Heavy modules (torch, transformers) load on first use of :class:`NLUModel` or the training code.
"""

from nlu.schema import EntitySpan, Example, IntentScore, ParsedEntity, ParseResult

__all__ = ["EntitySpan", "Example", "IntentScore", "NLUModel", "ParseResult", "ParsedEntity", "load_model"]


def __getattr__(name: str):
    if name == "NLUModel":
        from nlu.inference import NLUModel

        return NLUModel
    if name == "load_model":
        from nlu.inference import NLUModel

        return NLUModel.load
    raise AttributeError(name)
