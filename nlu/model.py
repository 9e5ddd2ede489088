"""The JointBERT-style network: a BERT-family encoder, an intent head on the pooled sentence and a
token-classification head for BIO slot tags, trained with one joint loss."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class HeadConfig:
    """Shape of the heads; saved beside the weights so the model can be rebuilt without data."""

    num_intents: int
    num_tags: int
    multi_label: bool = False
    pooling: str = "mean"
    dropout: float = 0.1
    slot_loss_weight: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class JointIntentSlotModel(nn.Module):
    """Encoder + intent head (pooled) + slot head (per piece). Returns logits; loss when targets given."""

    def __init__(self, encoder: nn.Module, heads: HeadConfig) -> None:
        super().__init__()
        if heads.pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', not {heads.pooling!r}")
        if getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None  # unused (we pool ourselves); an unused parameter would stall DDP
        self.encoder = encoder
        self.heads = heads
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(heads.dropout)
        self.intent_head = nn.Linear(hidden, heads.num_intents)
        self.slot_head = nn.Linear(hidden, heads.num_tags)

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.heads.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-6)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Intent logits (batch x intents), slot logits (batch x pieces x tags), pooled sentence vector."""
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**kwargs).last_hidden_state
        pooled = self.pool(hidden, attention_mask)
        intent_logits = self.intent_head(self.dropout(pooled))
        slot_logits = self.slot_head(self.dropout(hidden))
        return intent_logits, slot_logits, pooled

    def loss(
        self,
        intent_logits: torch.Tensor,
        slot_logits: torch.Tensor,
        intent_targets: torch.Tensor,
        slot_targets: torch.Tensor,
    ) -> torch.Tensor:
        """Joint loss: intent (softmax CE, or BCE per label in multi-label mode) + weighted slot CE."""
        if self.heads.multi_label:
            # Summed over labels (mean over the batch): a mean over dozens of mostly-negative labels
            # leaves the few positives too little gradient to ever cross 0.5.
            intent_loss = nn.functional.binary_cross_entropy_with_logits(
                intent_logits.float(), intent_targets.float(), reduction="sum"
            ) / intent_logits.shape[0]
        else:
            intent_loss = nn.functional.cross_entropy(intent_logits.float(), intent_targets)
        if self.heads.num_tags <= 1:
            return intent_loss
        slot_loss = nn.functional.cross_entropy(
            slot_logits.float().reshape(-1, slot_logits.shape[-1]), slot_targets.reshape(-1), ignore_index=-100
        )
        return intent_loss + self.heads.slot_loss_weight * slot_loss


def build_model(encoder_name_or_path: str, heads: HeadConfig) -> JointIntentSlotModel:
    """A fresh joint model on a pretrained encoder (weights from ``encoder_name_or_path``)."""
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(encoder_name_or_path)
    return JointIntentSlotModel(encoder, heads)


def model_from_config(encoder_config: Any, heads: HeadConfig) -> JointIntentSlotModel:
    """An untrained joint model with the shape given by configs, to load saved weights into."""
    from transformers import AutoModel

    return JointIntentSlotModel(AutoModel.from_config(encoder_config), heads)
