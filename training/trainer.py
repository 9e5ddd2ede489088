"""The fine-tuning loop for the joint intent + slot model.

AdamW with warm-up and linear decay, gradient clipping, early stopping on the dev set's primary
metric, seeded for reproducible runs, length-bucketed batches (little padding, :mod:`training.batches`),
mixed precision on CUDA, and data parallelism under ``torchrun``. After training the best epoch's weights
are calibrated on dev (temperature, out-of-scope threshold: :mod:`training.calibrate`) and saved as a
model artefact. The progress bar and epoch lines are :mod:`training.progress`. With ``init_from`` the run
starts from a saved model's weights and labels instead of the base encoder (:mod:`training.warm_start`).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csbot.artefact_dirs import check_out_dir
from csbot.errors import TrainingError
from nlu.artefact import ModelBundle, save_bundle
from nlu.calibration import Calibration
from nlu.encoders import encoder_load_error, resolve_encoder
from nlu.inference import NLUModel, resolve_device
from nlu.labels import LabelMaps
from nlu.model import HeadConfig, build_model
from nlu.neighbours import NeighbourBank
from nlu.schema import Example
from training.batches import collate, encode_examples, length_bucketed_batches, seed_everything
from training.calibrate import calibrate, calibrate_neighbours, has_oos_examples, uses_neighbours
from training.config import TrainingConfig
from training.data import fingerprint
from training.distributed import DistributedContext
from training.evaluation import evaluate_predictions
from training.progress import TrainingProgress

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a training run produced and how long it took."""

    bundle: ModelBundle
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    epochs_run: int = 0
    best_epoch: int = 0
    seconds_per_epoch: float = 0.0
    out_dir: Path | None = None


class Trainer:
    """Runs one training job; construct, then :meth:`run`."""

    def __init__(
        self,
        config: TrainingConfig,
        train: Sequence[Example],
        dev: Sequence[Example],
        out_dir: str | Path | None = None,
        show_progress: bool = True,
        on_epoch: Callable[[dict[str, Any]], None] | None = None,
        init_from: str | Path | None = None,
    ) -> None:
        if not train:
            raise TrainingError("no training examples")
        self.config = config
        self.train_examples = list(train)
        self.dev_examples = list(dev)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        if self.out_dir is not None:  # refuse a directory that is not ours before hours of training, not after
            check_out_dir(self.out_dir, "nlu-model")
        self.show_progress = show_progress
        self.on_epoch = on_epoch
        #: a saved model to start from instead of the base encoder (:mod:`training.warm_start`)
        self.init_from = Path(init_from) if init_from is not None else None
        #: the version of ``init_from`` once loaded; recorded in the new model's manifest and metrics
        self.parent: str | None = None
        #: the out-of-scope neighbour bank :meth:`calibrate` builds (None: the model does not use one)
        self.neighbours: NeighbourBank | None = None

    # -- setup ---------------------------------------------------------------------------------
    def _build(self) -> None:
        cfg = self.config
        self.device = resolve_device(cfg.device)
        self.dist = DistributedContext.from_env(self.device)
        if self.dist.enabled and self.device.startswith("cuda"):
            self.device = f"cuda:{self.dist.local_rank}"
            torch.cuda.set_device(self.dist.local_rank)
        seed_everything(cfg.seed)
        if self.init_from is not None:
            from training.warm_start import warm_start

            warm = warm_start(self.init_from, self.train_examples + self.dev_examples, cfg)
            self.config = cfg = warm.config  # the saved model's head shape and base model
            self.labels, self.tokenizer, self.model, self.parent = warm.labels, warm.tokenizer, warm.model, warm.parent
        else:
            self._build_fresh(cfg)
        if not getattr(self.tokenizer, "is_fast", False):
            raise TrainingError(f"{cfg.base_model}: a fast tokenizer is needed for character offsets")
        self.model.to(self.device)
        self.encoded = encode_examples(self.train_examples, self.tokenizer, self.labels, cfg.max_length)
        self.fingerprint = fingerprint(self.train_examples)

    def _build_fresh(self, cfg: TrainingConfig) -> None:
        """Label maps from the data, tokenizer and encoder from the base model, fresh heads."""
        from transformers import AutoTokenizer

        self.labels = LabelMaps.from_examples(self.train_examples + self.dev_examples)
        if self.labels.num_intents == 0:
            raise TrainingError("the training data has no intent labels")
        source = resolve_encoder(cfg.base_model)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source)
            heads = HeadConfig(
                num_intents=self.labels.num_intents,
                num_tags=self.labels.num_tags,
                multi_label=self.labels.multi_label,
                pooling=cfg.pooling,
                dropout=cfg.dropout,
                slot_loss_weight=cfg.slot_loss_weight,
            )
            self.model = build_model(source, heads)
        except OSError as exc:
            raise encoder_load_error(cfg.base_model, exc) from exc

    def _optimiser(self, total_steps: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
        cfg = self.config
        groups: dict[str, list[torch.nn.Parameter]] = {"decay": [], "no_decay": [], "heads": []}
        for name, param in self.model.named_parameters():
            if not name.startswith("encoder."):
                groups["heads"].append(param)
            elif param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name:
                groups["no_decay"].append(param)
            else:
                groups["decay"].append(param)
        optimiser = torch.optim.AdamW(
            [
                {"params": groups["decay"], "lr": cfg.learning_rate, "weight_decay": cfg.weight_decay},
                {"params": groups["no_decay"], "lr": cfg.learning_rate, "weight_decay": 0.0},
                {"params": groups["heads"], "lr": cfg.head_learning_rate, "weight_decay": cfg.weight_decay},
            ]
        )
        warmup = int(total_steps * cfg.warmup_ratio)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / max(1, warmup)
            return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

        return optimiser, torch.optim.lr_scheduler.LambdaLR(optimiser, factor)

    # -- evaluation ----------------------------------------------------------------------------
    def _bundle(self, calibration: Calibration, metrics: dict[str, Any] | None = None) -> ModelBundle:
        return ModelBundle(
            model=self.model,
            tokenizer=self.tokenizer,
            labels=self.labels,
            calibration=calibration,
            base_model=self.config.base_model,
            fingerprint=self.fingerprint,
            training_config=self.config.model_dump(),
            metrics=metrics or {},
            neighbours=self.neighbours,
            parent=self.parent,
        )

    def _parser(self, calibration: Calibration) -> NLUModel:
        return NLUModel(
            self._bundle(calibration),
            device=self.device,
            batch_size=self.config.eval_batch_size,
            max_length=self.config.max_length,
            precision="fp32",
        )

    def evaluate(self, calibration: Calibration | None = None) -> dict[str, Any]:
        """Dev metrics of the current weights (the model is left in eval mode)."""
        parser = self._parser(calibration or Calibration(oos_threshold=0.0))
        predictions = parser.parse([ex.text for ex in self.dev_examples])
        return evaluate_predictions(self.dev_examples, predictions, oos_label=self.labels.oos_label)

    def _dev_has_oos(self) -> bool:
        return has_oos_examples(self.dev_examples, self.labels)

    def calibrate(self) -> Calibration:
        """Fit the temperature on dev, then the out-of-scope threshold when dev has such examples, and the
        neighbour detector (out of scope from in-scope data alone) when the config asks for it."""
        self.neighbours = None
        if not self.dev_examples:
            return Calibration(oos_threshold=self.config.oos_threshold, threshold_source="config")
        parser = self._parser(Calibration())
        logits, _, dev_pooled, _ = parser.forward([ex.text for ex in self.dev_examples])
        calibration = calibrate(logits, self.dev_examples, self.labels, self.config)
        if uses_neighbours(self.dev_examples, self.labels, self.config):
            oos = self.labels.oos_label
            in_scope = np.array([ex.intent != oos for ex in self.dev_examples], dtype=bool)
            train = [ex for ex in self.train_examples if ex.intent != oos]  # the bank holds in-scope examples only
            _, _, train_pooled, _ = parser.forward([ex.text for ex in train])
            dev = [ex for ex, keep in zip(self.dev_examples, in_scope, strict=True) if keep]
            self.neighbours = calibrate_neighbours(calibration, train_pooled, train, dev, dev_pooled[in_scope],
                                                   self.config)
        return calibration

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        self._build()
        try:
            return self._run()
        finally:
            self.dist.close()

    def _run(self) -> TrainResult:
        cfg, dist_ctx = self.config, self.dist
        lengths = [len(e.ids) for e in self.encoded]
        per_epoch = math.ceil(len(self.encoded) / cfg.batch_size) // dist_ctx.world_size
        if per_epoch == 0:
            raise TrainingError(
                f"{len(self.encoded)} examples make no batch of {cfg.batch_size} per process "
                f"across {dist_ctx.world_size} processes"
            )
        # small data sets get more epochs, so every run takes at least ``min_steps`` optimiser steps
        epochs = max(cfg.epochs, math.ceil(cfg.min_steps / per_epoch)) if cfg.min_steps else cfg.epochs
        total = per_epoch * epochs
        if cfg.max_steps is not None:
            total = min(total, cfg.max_steps)
        optimiser, scheduler = self._optimiser(total)

        train_model: torch.nn.Module = self.model
        if dist_ctx.enabled:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [dist_ctx.local_rank] if self.device.startswith("cuda") else None
            train_model = DistributedDataParallel(self.model, device_ids=device_ids)

        use_amp = self.device.startswith("cuda") and cfg.mixed_precision
        amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
        pad_id = self.tokenizer.pad_token_id or 0

        best_score, best_epoch, best_state, stale = -math.inf, 0, None, 0
        history: list[dict[str, Any]] = []
        step = 0
        train_seconds = 0.0
        early_stopping = bool(self.dev_examples)  # the bar's estimate is then the longest run, and says so
        with TrainingProgress(total, self.show_progress and dist_ctx.is_main, epochs, early_stopping) as progress:
            for epoch in range(1, epochs + 1):
                train_model.train()
                started = time.perf_counter()
                batches = length_bucketed_batches(lengths, cfg.batch_size, cfg.seed * 1000 + epoch)
                mine = batches[: per_epoch * dist_ctx.world_size][dist_ctx.rank :: dist_ctx.world_size]
                losses = []
                for indices in mine:
                    batch = collate([self.encoded[i] for i in indices], pad_id, self.labels.multi_label)
                    batch = {k: v.to(self.device) for k, v in batch.items()}
                    with torch.autocast("cuda", dtype=amp_dtype, enabled=use_amp):
                        intent_logits, slot_logits, _ = train_model(batch["input_ids"], batch["attention_mask"])
                    loss = self.model.loss(intent_logits, slot_logits, batch["intents"], batch["slots"])
                    if not torch.isfinite(loss):
                        raise TrainingError(f"the loss diverged at step {step + 1}; lower the learning rate")
                    optimiser.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimiser)
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                    scaler.step(optimiser)
                    scaler.update()
                    scheduler.step()
                    step += 1
                    losses.append(float(loss.item()))
                    progress.step(float(np.mean(losses[-50:])))
                    if cfg.max_steps is not None and step >= cfg.max_steps:
                        break
                seconds = time.perf_counter() - started
                train_seconds += seconds
                record: dict[str, Any] = {"epoch": epoch, "loss": float(np.mean(losses)) if losses else None,
                                          "seconds": round(seconds, 2)}
                stop = cfg.max_steps is not None and step >= cfg.max_steps
                if dist_ctx.is_main and self.dev_examples:
                    # With out-of-scope dev data, score each epoch at the threshold it would ship with:
                    # before thresholding, early under-confident epochs look best.
                    metrics = self.evaluate(self.calibrate() if self._dev_has_oos() else None)
                    score = float(metrics[metrics["primary_metric"]])
                    record.update(dev_primary=metrics["primary_metric"], dev_score=score,
                                  dev_intent_accuracy=metrics.get("intent_accuracy"),
                                  dev_slot_f1=metrics.get("slot_f1"))
                    if score > best_score:
                        best_score, best_epoch, stale = score, epoch, 0
                        best_state = copy.deepcopy({k: v.detach().cpu() for k, v in self.model.state_dict().items()})
                    else:
                        stale += 1
                        stop = stop or stale >= cfg.patience
                elif dist_ctx.is_main:
                    best_epoch = epoch
                history.append(record)
                if dist_ctx.is_main:
                    progress.epoch(record)
                    if self.on_epoch:
                        self.on_epoch(record)
                if dist_ctx.broadcast_flag(stop):
                    break
            if dist_ctx.is_main:
                ended = "max_steps" if cfg.max_steps is not None and step >= cfg.max_steps else ""
                progress.finish(len(history), best_epoch, train_seconds,
                                ended or ("early" if len(history) < epochs else ""))

        epochs_run = len(history)
        if best_state is not None:
            self.model.load_state_dict(best_state)
        metrics: dict[str, Any] = {}
        calibration = Calibration(oos_threshold=cfg.oos_threshold, threshold_source="config")
        if dist_ctx.is_main:
            calibration = self.calibrate()
            if self.dev_examples:
                metrics = self.evaluate(calibration)
            metrics["calibration"] = {**metrics.get("calibration", {}), **calibration.to_dict()}
            metrics["training"] = {
                "epochs_run": epochs_run,
                "best_epoch": best_epoch,
                "seconds_per_epoch": round(train_seconds / max(1, epochs_run), 2),
                "train_examples": len(self.train_examples),
                "dev_examples": len(self.dev_examples),
                "world_size": dist_ctx.world_size,
                "device": self.device,
                "parent": self.parent,
                "history": history,
            }
        bundle = self._bundle(calibration, metrics)
        if dist_ctx.is_main and self.out_dir is not None:
            save_bundle(bundle, self.out_dir)
        dist_ctx.barrier()
        return TrainResult(
            bundle=bundle,
            metrics=metrics,
            history=history,
            epochs_run=epochs_run,
            best_epoch=best_epoch,
            seconds_per_epoch=train_seconds / max(1, epochs_run),
            out_dir=self.out_dir,
        )
