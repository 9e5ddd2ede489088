"""Warm start: a new model that begins from a saved model's weights instead of the base encoder.

The encoder weights and the tokenizer come from the saved model. The label maps are the saved model's,
extended with the intents and slot types the new data adds (:func:`extend_labels`): every old label keeps its
index, new ones are appended in sorted order, and old labels the new data lacks are kept, so a model never
forgets an intent because one batch of data has no example of it. The heads' rows of old labels are copied
from the saved heads; rows of new labels keep the fresh initialisation of a new head (:func:`transplant`).

The head shape (pooling, dropout, slot loss weight) and the base model's name come from the saved model too:
a training config that asks otherwise is overridden, and the override is logged (:func:`adopt_config`). A
saved single-label model cannot be warm-started with multi-label data, nor the reverse.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from csbot.errors import TrainingError
from nlu.artefact import ModelBundle, load_bundle
from nlu.labels import OOS_LABELS, LabelMaps
from nlu.model import HeadConfig, JointIntentSlotModel
from nlu.schema import Example
from training.config import TrainingConfig

log = logging.getLogger(__name__)

#: Training options that must follow the saved model, with where the saved model keeps each.
_HEAD_KEYS = ("pooling", "dropout", "slot_loss_weight")


@dataclass
class WarmStart:
    """What a warm-started training run begins with."""

    model: JointIntentSlotModel
    tokenizer: Any
    labels: LabelMaps
    config: TrainingConfig
    #: the saved model's version ("" when it has none)
    parent: str
    new_intents: list[str]
    new_slot_types: list[str]


def extend_labels(old: LabelMaps, examples: Iterable[Example]) -> LabelMaps:
    """``old``'s label maps with the intents and slot types of ``examples`` it lacks appended (sorted).

    Old labels keep their indices (BIO tags are derived from the slot types in order, so old tags keep theirs
    too) and stay even when ``examples`` has none of them. Raises :class:`TrainingError` when the examples ask
    for another label mode (multi-label data for a single-label model, or the reverse).
    """
    found = LabelMaps.from_examples(examples)
    if found.multi_label != old.multi_label:
        mode = {True: "multi-label", False: "single-label"}
        raise TrainingError(
            f"cannot warm-start a {mode[old.multi_label]} model with {mode[found.multi_label]} data: the intent head "
            "scores labels differently in the two modes; train from scratch instead"
        )
    known_intents, known_slots = set(old.intents), set(old.slot_types)
    intents = old.intents + sorted(set(found.intents) - known_intents)
    slot_types = old.slot_types + sorted(set(found.slot_types) - known_slots)
    oos = old.oos_label or next((name for name in sorted(set(intents) - known_intents)
                                 if name.lower() in OOS_LABELS), None)
    return LabelMaps(intents, slot_types, multi_label=old.multi_label,
                     allows_empty=old.allows_empty or found.allows_empty, oos_label=oos)


def warm_heads(old: HeadConfig, labels: LabelMaps) -> HeadConfig:
    """The saved model's head shape, sized for ``labels``."""
    return replace(old, num_intents=labels.num_intents, num_tags=labels.num_tags, multi_label=labels.multi_label)


def transplant(old: ModelBundle, labels: LabelMaps, heads: HeadConfig | None = None) -> JointIntentSlotModel:
    """A model on ``old``'s encoder whose heads are sized for ``labels`` (a superset of ``old.labels``).

    Rows (and biases) of labels ``old`` knows are copies of its heads' rows; the others keep the fresh
    initialisation of a new :class:`torch.nn.Linear` (seed the run first for reproducible rows). ``old``'s
    encoder module is reused, not copied.
    """
    import torch

    heads = heads or warm_heads(old.model.heads, labels)
    if heads.multi_label != old.labels.multi_label:
        raise TrainingError("the head config's label mode differs from the saved model's")
    if heads.num_intents != labels.num_intents or heads.num_tags != labels.num_tags:
        raise TrainingError("the head config's sizes do not match the label maps")
    missing = [name for name in old.labels.intents if not labels.has_intent(name)]
    missing += [tag for tag in old.labels.tags if tag not in labels.tags]
    if missing:
        raise TrainingError(f"the new label maps drop labels of the saved model: {', '.join(missing[:5])}")
    model = JointIntentSlotModel(old.model.encoder, heads)
    intent_rows = torch.tensor([labels.intent_id(name) for name in old.labels.intents], dtype=torch.long)
    tag_rows = torch.tensor([labels.tag_id(tag) for tag in old.labels.tags], dtype=torch.long)
    with torch.no_grad():
        for new_head, old_head, rows in ((model.intent_head, old.model.intent_head, intent_rows),
                                         (model.slot_head, old.model.slot_head, tag_rows)):
            new_head.weight[rows] = old_head.weight.to(new_head.weight.dtype)
            new_head.bias[rows] = old_head.bias.to(new_head.bias.dtype)
    return model


def load_warm_model(model_dir: str | Path, labels: LabelMaps, heads_config: HeadConfig | None = None,
                    device: str = "cpu") -> JointIntentSlotModel:
    """Load the model saved in ``model_dir`` and :func:`transplant` it onto ``labels`` (on ``device``).

    ``heads_config`` defaults to the saved model's head shape sized for ``labels``.
    """
    model = transplant(load_bundle(model_dir), labels, heads_config)
    return model.to(device)


def adopt_config(config: TrainingConfig, old: ModelBundle) -> TrainingConfig:
    """``config`` with the head shape and base model name of the saved model; each override is logged."""
    wanted: dict[str, Any] = {key: getattr(old.model.heads, key) for key in _HEAD_KEYS}
    if old.base_model:
        wanted["base_model"] = old.base_model
    changes = {key: value for key, value in wanted.items() if getattr(config, key) != value}
    for key, value in changes.items():
        log.info("warm start: training option %s=%r replaced by the saved model's %r", key, getattr(config, key), value)
    return config.model_copy(update=changes) if changes else config


def warm_start(model_dir: str | Path, examples: Iterable[Example], config: TrainingConfig) -> WarmStart:
    """Everything a training run needs to continue from the model saved in ``model_dir`` on ``examples``
    (training and dev together: every label either holds gets a row)."""
    old = load_bundle(model_dir)
    labels = extend_labels(old.labels, examples)
    model = transplant(old, labels)
    new_intents = labels.intents[old.labels.num_intents:]
    new_slots = labels.slot_types[len(old.labels.slot_types):]
    parent = old.info.version if old.info is not None else ""
    log.info("warm start from %s (version %s): %d intents (%d new), %d slot types (%d new)", model_dir, parent,
             labels.num_intents, len(new_intents), len(labels.slot_types), len(new_slots))
    return WarmStart(model=model, tokenizer=old.tokenizer, labels=labels, config=adopt_config(config, old),
                     parent=parent, new_intents=new_intents, new_slot_types=new_slots)


__all__ = ["WarmStart", "adopt_config", "extend_labels", "load_warm_model", "transplant", "warm_heads", "warm_start"]
