"""The domain file (YAML under ``configs/``): intents, slots, templates, thresholds and hand-over rules.

The pydantic models below are the file's schema; :mod:`bot.domain.loader` reads a file into them and
checks what a schema cannot (placeholders, regexes, dotted paths, the model's intents).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SlotType = Literal["text", "number", "email", "date", "order_number", "phone", "any", "amount", "time", "url"]

#: The longest value (or bare reply) a slot considers by default; anything longer is refused before any
#: pattern runs, so validation time stays bounded whatever a customer sends.
MAX_VALUE_LENGTH = 1000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlotSpec(_Strict):
    """A value an intent needs: how to recognise it, how to ask for it, what to say when it is invalid."""

    type: SlotType = "text"
    regex: str | None = Field(None, description="a value must match this (full match, case-insensitive)")
    prompt: str = Field(..., description="asked when the slot is missing (a template text)")
    invalid: str | None = Field(None, description="said before re-asking when a value is invalid")
    entities: list[str] = Field(default_factory=list, description="tagger entities that fill it (default: its name)")
    max_length: int = Field(MAX_VALUE_LENGTH, ge=1, le=10_000,
                            description="longer values (and bare replies) are refused before any pattern runs")


class ButtonSpec(_Strict):
    """A quick reply; ``payload`` (default: the title) comes back as the customer's next message."""

    title: str
    payload: str | None = None


class VariantSpec(_Strict):
    """One wording of a template; placeholders ``{name}`` take slots and action variables (in ``text``, button
    titles and payloads, and ``image``). ``image``, ``attachment`` and ``custom`` are passed to channels that
    show them (REST sends them as Rasa does); others send the image or attachment as a link after the text."""

    text: str = ""
    buttons: list[ButtonSpec] = Field(default_factory=list)
    image: str | None = Field(None, min_length=1, description="an image URL")
    attachment: str | dict[str, Any] | None = Field(None, description="a file URL, or the channel's own attachment object")
    custom: dict[str, Any] | None = Field(None, description="a JSON object passed to the channel as is")

    @model_validator(mode="after")
    def _says_something(self) -> VariantSpec:
        if not (self.text or self.buttons or self.image or self.attachment or self.custom):
            raise ValueError("a template variant needs text, buttons, an image, an attachment or custom data")
        return self


class IntentSpec(_Strict):
    """What the bot does with an intent once recognised."""

    template: str | None = Field(None, description="template name (default: the intent's own name)")
    required_slots: list[str] = Field(default_factory=list)
    action: str | None = Field(None, description="async callable 'package.module:function' run before the template")
    provides: list[str] = Field(default_factory=list, description="template variables the action returns")
    alternatives: list[str] = Field(default_factory=list,
                                    description="other templates the action may pick by returning {'template': name}")
    sensitive: bool = Field(False, description="ask for confirmation before the action runs")
    confirm: str | None = Field(None, description="template asking for confirmation (default: 'confirm_<intent>')")
    retrieve: bool = Field(False, description="a question answered from the Q&A index")
    chitchat: bool = Field(False, description="greeting, thanks, goodbye...: answered without touching a form")
    handoff: bool = Field(False, description="hand the conversation to a person (explicit request, complaint)")
    leaves_form: bool | None = Field(None, description="the customer drops what is in progress (stop, deny, never "
                                                       "mind...); default: whether the name is one of the built-in "
                                                       "stop-like intents")
    threshold: float | None = Field(None, ge=0, le=1, description="this intent's own confidence threshold")


class Thresholds(_Strict):
    """Confidence levels the policy decides with."""

    intent: float | None = Field(None, ge=0, le=1, description="below this the intent is not trusted (default: the "
                                 "threshold the model chose on dev when trained, else 0.5)")
    retrieval: float | None = Field(None, description="a retrieved answer needs this score (default: the index's)")
    ambiguity_margin: float | None = Field(None, ge=0, description="hits closer than this are ambiguous")


class HandoffSpec(_Strict):
    """When a person takes over."""

    max_failures: int = Field(2, ge=1, description="consecutive turns the bot could not place")
    max_invalid_values: int = Field(3, ge=1, description="consecutive invalid answers to a slot question")
    template: str = "handoff"
    hook: str | None = Field(None, description="async callable 'package.module:function' told of each hand-over")


class Domain(_Strict):
    """A whole bot: the schema of ``configs/<domain>/domain.yml``."""

    version: Literal[1] = 1
    policy: str = Field("rules", description="a registered policy name or a dotted path")
    thresholds: Thresholds = Thresholds()
    handoff: HandoffSpec = HandoffSpec()
    action_timeout_seconds: float = Field(5.0, gt=0)
    slots: dict[str, SlotSpec] = Field(default_factory=dict)
    intents: dict[str, IntentSpec] = Field(default_factory=dict)
    templates: dict[str, list[VariantSpec]] = Field(default_factory=dict)

    def template_name(self, intent: str) -> str | None:
        """The template an intent answers with, if any."""
        spec = self.intents.get(intent)
        name = spec.template if spec and spec.template else intent
        return name if name in self.templates else None
