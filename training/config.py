"""Training options: defaults in ``configs/default.yaml`` (section ``training``), overridden by flags."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrainingConfig(BaseModel):
    """Everything that shapes a training run; saved in the model artefact as ``training_config.json``."""

    model_config = ConfigDict(extra="forbid")

    base_model: str = "all-MiniLM-L6-v2"
    epochs: int = Field(10, ge=1, description="the learning rate decays to zero over these; early stopping may end sooner")
    min_steps: int = Field(1000, ge=0, description="small data sets train for more epochs to reach this many steps")
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-4, gt=0)
    head_learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)
    patience: int = Field(5, ge=1, description="epochs without dev improvement before stopping")
    seed: int = 13
    max_length: int = Field(128, ge=8)
    pooling: Literal["mean", "cls"] = "mean"
    dropout: float = Field(0.1, ge=0, lt=1)
    slot_loss_weight: float = Field(1.0, ge=0)
    dev_split: float = Field(0.1, ge=0, lt=1, description="share of train held out when no dev set is given")
    oos_max_in_scope_cost: float = Field(0.01, ge=0, le=1)
    oos_threshold: float = Field(0.3, ge=0, le=1, description="used when the data has no out-of-scope examples "
                                                             "and the neighbour detector is off")
    oos_detector: Literal["auto", "neighbours", "none"] = Field(
        "auto", description="out-of-scope detection from in-scope data alone (nlu/neighbours.py): auto uses it when "
                            "dev has no out-of-scope examples, neighbours always, none never")
    oos_accept_rate: float = Field(0.97, gt=0, le=1, description="the neighbour detector's threshold keeps this "
                                                                 "share of the in-scope dev messages")
    oos_neighbours_per_intent: int = Field(200, ge=1, description="training examples kept per intent to compare with")
    oos_neighbours_k: int = Field(1, ge=1, description="a message's score: mean similarity to its k nearest examples")
    answer_precision: float = Field(
        0.98, ge=0, le=1, description="the model's confidence threshold (the default thresholds.intent) is the lowest "
                                      "at which its answers on dev are right this often; 0: not chosen (0.5)")
    oos_score: Literal["auto", "probability", "energy"] = Field(
        "auto", description="what the out-of-scope threshold applies to; auto measures both on dev and keeps the better"
    )
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimiser steps (smoke tests)")
    device: str = "auto"
    mixed_precision: bool = True
    eval_batch_size: int = Field(64, ge=1)
