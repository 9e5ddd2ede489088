"""Rasa projects as csbot projects: the domain, stories and rules, and a whole project converted in one call.

:func:`convert_project` is what ``csbot init --from-rasa`` runs; :func:`looks_like_rasa` lets the domain
and story loaders say "convert it" instead of listing schema errors when given a Rasa file.
"""

from bot.rasa.detect import RASA_HINT, looks_like_rasa
from bot.rasa.domain import DomainConversion, convert_domain
from bot.rasa.stories import StoriesConversion, convert_stories

__all__ = ["RASA_HINT", "DomainConversion", "StoriesConversion", "convert_domain", "convert_stories",
           "looks_like_rasa"]


def __getattr__(name: str):  # convert_project and its report load the training importers: only when asked
    if name in ("convert_project", "ConversionReport"):
        from bot.rasa import project

        return getattr(project, name)
    raise AttributeError(name)
