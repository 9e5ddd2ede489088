"""Label maps: intents, BIO slot tags, and the label mode (single- or multi-label) chosen from data."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nlu.schema import Example

#: Intent names that mean "out of scope" when they occur in training data.
OOS_LABELS = ("oos", "out_of_scope", "outofscope", "nlu_fallback")


@dataclass
class LabelMaps:
    """Intent and slot-tag vocabularies of one model, with the mode the data asked for.

    ``multi_label`` is true when any training example has no intent or several (``a#b``): the intent
    head then scores every label independently (sigmoid) and predicts the set above 0.5; ``allows_empty``
    when some example has none, so the model may predict no intent at all.

    An example without an intent reaches this point only from multi-label data: the importers refuse an
    empty label in a file where no example has several intents (NLU++ and JSONL ``intents`` lists excepted;
    see :func:`training.importers.base.check_labels`), so one stray empty label is an error naming its
    file and line, never a silent switch of the whole model to multi-label mode.
    """

    intents: list[str]
    slot_types: list[str]
    multi_label: bool = False
    allows_empty: bool = False
    oos_label: str | None = None
    tags: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.tags = ["O"] + [f"{prefix}-{slot}" for slot in self.slot_types for prefix in ("B", "I")]
        self._intent_ids = {name: i for i, name in enumerate(self.intents)}
        self._tag_ids = {tag: i for i, tag in enumerate(self.tags)}

    @classmethod
    def from_examples(cls, examples: Iterable[Example], oos_labels: Sequence[str] = OOS_LABELS) -> LabelMaps:
        """Collect labels in sorted order, so the same data always gives the same ids."""
        intents: set[str] = set()
        slots: set[str] = set()
        multi = empty = False
        for ex in examples:
            labels = ex.intents
            if len(labels) != 1:
                multi = True
                empty = empty or not labels
            intents.update(labels)
            slots.update(ent.entity for ent in ex.entities)
        oos = next((name for name in sorted(intents) if name.lower() in oos_labels), None)
        return cls(sorted(intents), sorted(slots), multi_label=multi, allows_empty=empty, oos_label=oos)

    @property
    def num_intents(self) -> int:
        return len(self.intents)

    @property
    def num_tags(self) -> int:
        return len(self.tags)

    def intent_id(self, name: str) -> int:
        return self._intent_ids[name]

    def has_intent(self, name: str) -> bool:
        return name in self._intent_ids

    def tag_id(self, tag: str) -> int:
        return self._tag_ids[tag]

    def to_dict(self) -> dict[str, Any]:
        return {
            "intents": self.intents,
            "slot_types": self.slot_types,
            "multi_label": self.multi_label,
            "allows_empty": self.allows_empty,
            "oos_label": self.oos_label,
            "tags": self.tags,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabelMaps:
        maps = cls(
            list(data["intents"]),
            list(data["slot_types"]),
            multi_label=bool(data.get("multi_label", False)),
            allows_empty=bool(data.get("allows_empty", False)),
            oos_label=data.get("oos_label"),
        )
        if "tags" in data and list(data["tags"]) != maps.tags:
            raise ValueError("tags do not match slot_types")
        return maps
