"""Training data as model inputs: tokenised examples with aligned slot targets, length-bucketed batches."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nlu.alignment import IGNORE_INDEX, piece_tag_ids
from nlu.labels import LabelMaps
from nlu.schema import Example


@dataclass
class EncodedExample:
    """One training example as model inputs and targets."""

    ids: list[int]
    intent: int | list[float]
    slots: list[int]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def encode_examples(
    examples: Sequence[Example], tokenizer: Any, labels: LabelMaps, max_length: int
) -> list[EncodedExample]:
    """Tokenise every example once, with BIO targets aligned through character offsets."""
    batch = tokenizer(
        [ex.text for ex in examples],
        truncation=True,
        max_length=max_length,
        return_offsets_mapping=True,
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    encoded = []
    for i, ex in enumerate(examples):
        offsets = [tuple(o) for o in batch["offset_mapping"][i]]
        slots = (
            piece_tag_ids(offsets, batch.word_ids(i), ex.entities, labels)
            if labels.slot_types
            else [IGNORE_INDEX] * len(offsets)
        )
        if labels.multi_label:
            target: int | list[float] = [0.0] * labels.num_intents
            for name in ex.intents:
                target[labels.intent_id(name)] = 1.0
        else:
            target = labels.intent_id(ex.intent)
        encoded.append(EncodedExample(batch["input_ids"][i], target, slots))
    return encoded


def length_bucketed_batches(lengths: Sequence[int], batch_size: int, seed: int) -> list[list[int]]:
    """Shuffled batches of similar length: sort within large random chunks, then shuffle batches."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches.extend(part[j : j + batch_size] for j in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def collate(items: Sequence[EncodedExample], pad_id: int, multi_label: bool) -> dict[str, torch.Tensor]:
    width = max(len(it.ids) for it in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    slots = torch.full((len(items), width), IGNORE_INDEX, dtype=torch.long)
    for row, it in enumerate(items):
        n = len(it.ids)
        ids[row, :n] = torch.tensor(it.ids)
        mask[row, :n] = 1
        slots[row, :n] = torch.tensor(it.slots)
    if multi_label:
        intents = torch.tensor([it.intent for it in items], dtype=torch.float32)
    else:
        intents = torch.tensor([it.intent for it in items], dtype=torch.long)
    return {"input_ids": ids, "attention_mask": mask, "intents": intents, "slots": slots}


__all__ = ["EncodedExample", "collate", "encode_examples", "length_bucketed_batches", "seed_everything"]
