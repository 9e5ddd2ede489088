"""The fine-tuning loop for the joint intent + slot model.

AdamW with warm-up and linear decay, gradient clipping, early stopping on the dev set's primary
metric, seeded for reproducible runs, length-bucketed batches (little padding), mixed precision on
CUDA, and data parallelism under ``torchrun``. After training the best epoch's weights are
calibrated on dev (temperature, out-of-scope threshold) and saved as a model artefact.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csbot.errors import TrainingError
from nlu.alignment import IGNORE_INDEX, piece_tag_ids
from nlu.artefact import ModelBundle, save_bundle
from nlu.calibration import (
    OOS_SCORES,
    Calibration,
    choose_oos_threshold,
    expected_calibration_error,
    fit_temperature,
    oos_scores,
    sigmoid,
    softmax,
)
from nlu.encoders import encoder_load_error, resolve_encoder
from nlu.inference import NLUModel, resolve_device
from nlu.labels import LabelMaps
from nlu.model import HeadConfig, build_model
from nlu.schema import Example
from training.config import TrainingConfig
from training.data import fingerprint
from training.distributed import DistributedContext
from training.evaluation import evaluate_predictions

log = logging.getLogger(__name__)


@dataclass
class EncodedExample:
    """One training example as model inputs and targets."""

    ids: list[int]
    intent: int | list[float]
    slots: list[int]


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
    ) -> None:
        if not train:
            raise TrainingError("no training examples")
        self.config = config
        self.train_examples = list(train)
        self.dev_examples = list(dev)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.show_progress = show_progress
        self.on_epoch = on_epoch

    # -- setup ---------------------------------------------------------------------------------
    def _build(self) -> None:
        from transformers import AutoTokenizer

        cfg = self.config
        self.device = resolve_device(cfg.device)
        self.dist = DistributedContext.from_env(self.device)
        if self.dist.enabled and self.device.startswith("cuda"):
            self.device = f"cuda:{self.dist.local_rank}"
            torch.cuda.set_device(self.dist.local_rank)
        seed_everything(cfg.seed)
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
        if not getattr(self.tokenizer, "is_fast", False):
            raise TrainingError(f"{cfg.base_model}: a fast tokenizer is needed for character offsets")
        self.model.to(self.device)
        self.encoded = encode_examples(self.train_examples, self.tokenizer, self.labels, cfg.max_length)
        self.fingerprint = fingerprint(self.train_examples)

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
        oos = self.labels.oos_label
        return oos is not None and any(ex.intent == oos for ex in self.dev_examples)

    def calibrate(self) -> Calibration:
        """Fit the temperature on dev, then the out-of-scope threshold when dev has such examples."""
        cfg = self.config
        if not self.dev_examples:
            return Calibration(oos_threshold=cfg.oos_threshold, threshold_source="config")
        parser = self._parser(Calibration())
        logits, _, _ = parser.logits([ex.text for ex in self.dev_examples])
        labels = self.labels
        if labels.multi_label:
            targets = np.zeros_like(logits)
            for row, ex in enumerate(self.dev_examples):
                for name in ex.intents:
                    targets[row, labels.intent_id(name)] = 1.0
            temperature = fit_temperature(logits, targets, multi_label=True)
            before, after = sigmoid(logits), sigmoid(logits, temperature)
            ece = [expected_calibration_error(p.ravel(), targets.ravel()) for p in (before, after)]
            return Calibration(temperature, cfg.oos_threshold, "config", ece[0], ece[1])

        gold = np.array([labels.intent_id(ex.intent) for ex in self.dev_examples])
        temperature = fit_temperature(logits, gold)
        before, after = softmax(logits), softmax(logits, temperature)
        correct = before.argmax(1) == gold
        ece = [expected_calibration_error(p.max(1), correct) for p in (before, after)]
        calibration = Calibration(temperature, cfg.oos_threshold, "config", ece[0], ece[1])
        if self._dev_has_oos():
            self._choose_oos_threshold(calibration, logits, gold)
        return calibration

    def _choose_oos_threshold(self, calibration: Calibration, logits: np.ndarray, gold: np.ndarray) -> None:
        """Pick the out-of-scope score and its threshold on dev (most OOS recall within the allowed cost)."""
        cfg, labels = self.config, self.labels
        oos_id = labels.intent_id(labels.oos_label)
        predicted_oos = logits.argmax(1) == oos_id
        is_oos = gold == oos_id
        correct = (logits.argmax(1) == gold)[~is_oos]
        names = OOS_SCORES if cfg.oos_score == "auto" else (cfg.oos_score,)
        results: dict[str, dict] = {}
        for name in names:
            scores = oos_scores(logits, name, calibration.temperature, oos_id)
            scores = np.where(predicted_oos, -np.inf, scores)
            threshold, info = choose_oos_threshold(
                scores[~is_oos], correct, scores[is_oos], cfg.oos_max_in_scope_cost
            )
            results[name] = {"threshold": threshold, **info}
        # Most recall first; then the in-scope accuracy kept; the plain probability wins a full tie.
        chosen = max(names, key=lambda n: (results[n]["oos_recall"], results[n]["in_scope_accuracy"], n == "probability"))
        calibration.oos_score = chosen
        calibration.oos_threshold = float(results[chosen]["threshold"])
        calibration.threshold_source = "dev"
        calibration.oos_dev = results
        log.debug("out-of-scope score %s, threshold %.4f chosen on dev: %s", chosen, calibration.oos_threshold, results)

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
        progress = self._progress() if (self.show_progress and dist_ctx.is_main) else None
        task = progress.add_task("training", total=total, loss=float("nan")) if progress else None
        if progress:
            progress.start()
        try:
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
                    if progress:
                        progress.update(task, advance=1, loss=float(np.mean(losses[-50:])))
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
                    self._report_epoch(record, progress)
                    if self.on_epoch:
                        self.on_epoch(record)
                if dist_ctx.broadcast_flag(stop):
                    break
        finally:
            if progress:
                progress.stop()

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

    def _progress(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        return Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            transient=False,
        )

    def _report_epoch(self, record: dict[str, Any], progress: Any) -> None:
        parts = [f"epoch {record['epoch']}", f"loss {record['loss']:.4f}" if record["loss"] is not None else ""]
        if "dev_score" in record:
            parts.append(f"dev {record['dev_primary']} {record['dev_score']:.4f}")
            if record.get("dev_intent_accuracy") is not None:
                parts.append(f"intent acc {record['dev_intent_accuracy']:.4f}")
            if record.get("dev_slot_f1") is not None:
                parts.append(f"slot F1 {record['dev_slot_f1']:.4f}")
        parts.append(f"{record['seconds']:.0f}s")
        line = " · ".join(p for p in parts if p)
        if progress is not None:
            progress.console.print(line)
        else:
            log.info("%s", line)
