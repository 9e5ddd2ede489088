"""``csbot train`` (``csbot evaluate`` is in :mod:`bot.cli.evaluate`)."""

from __future__ import annotations

import math
from pathlib import Path

import click

from bot.cli.options import (
    config_option,
    device_option,
    format_option,
    label_column_option,
    text_column_option,
)


@click.command("train")
@click.option("--data", "data", multiple=True, required=True, help="Training data: PATH or PATH@SELECTOR (repeatable).")
@click.option("--dev", "dev", multiple=True, help="Dev data for early stopping and calibration (repeatable).")
@click.option("--dev-split", type=float, default=None, help="Hold out this share of --data as dev when no --dev (default 0.1; 0 for none).")
@format_option
@text_column_option
@label_column_option
@click.option("--base-model", default=None, help="Encoder: Hugging Face name or local path (default all-MiniLM-L6-v2, offline).")
@click.option("--epochs", type=int, default=None, help="Epochs (default from config: 10, more for small data sets to reach min_steps); early stopping may end sooner.")
@click.option("--batch-size", type=int, default=None, help="Examples per optimiser step (default 32).")
@click.option("--learning-rate", type=float, default=None, help="Encoder learning rate (default 1e-4; heads use head_learning_rate).")
@click.option("--seed", type=int, default=None, help="Seed for a reproducible run (default 13).")
@click.option("--max-steps", type=int, default=None, help="Stop after this many optimiser steps (smoke runs).")
@device_option
@config_option
@click.option("--no-progress", is_flag=True, help="No progress bar (logs only).")
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="Directory for the model artefact: a new or empty directory, or a model to replace.")
def train_command(
    data, dev, dev_split, data_format, text_column, label_column, base_model, epochs, batch_size,
    learning_rate, seed, max_steps, device, config_path, no_progress, out,
) -> None:
    """Fine-tune the joint intent + slot model on your data.

    --out must be new, empty, or a model (replaced whole once the new one is saved); anything else is refused
    before any work, and nothing is deleted.
    """
    from rich.console import Console

    from csbot.artefact_dirs import check_out_dir
    from csbot.settings import load_config
    from training.data import load_dataset, stratified_split
    from training.trainer import Trainer

    check_out_dir(out, "nlu-model")

    flags = {"base_model": base_model, "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
             "seed": seed, "max_steps": max_steps, "device": device, "dev_split": dev_split}
    config = load_config(config_path, {f"training.{key}": value for key, value in flags.items()}).training
    min_steps = config.min_steps
    if epochs is not None:  # an explicit --epochs is taken as given (warned about below when that is few steps)
        config = config.model_copy(update={"min_steps": 0})
    console = Console(stderr=True)
    examples = load_dataset(list(data), data_format, text_column, label_column)
    if dev:
        dev_examples = load_dataset(list(dev), data_format, text_column, label_column)
        train_examples = examples
    elif config.dev_split > 0:
        train_examples, dev_examples = stratified_split(examples, config.dev_split, config.seed)
    else:
        train_examples, dev_examples = examples, []
    console.print(f"training on {len(train_examples)} examples, dev {len(dev_examples)}, encoder {config.base_model}")
    warning = few_steps_warning(epochs, len(train_examples), config.batch_size, min_steps)
    if warning:
        console.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True, highlight=False)
    on_epoch = None
    if no_progress:  # no bar: one line per epoch instead (the log shows them only with --verbose)
        from training.progress import epoch_line

        def on_epoch(record):
            console.print(epoch_line(record), highlight=False, soft_wrap=True)

    result = Trainer(config, train_examples, dev_examples, out_dir=out, show_progress=not no_progress,
                     on_epoch=on_epoch).run()
    if result.out_dir is None:
        return
    metrics = result.metrics
    summary = ", ".join(
        f"{key} {metrics[key]:.4f}"
        for key in ("intent_accuracy", "slot_f1", "in_scope_accuracy", "oos_recall")
        if isinstance(metrics.get(key), float)
    )
    console.print(f"saved {Path(out)} after {result.epochs_run} epochs (best {result.best_epoch}); dev: {summary or 'n/a'}")
    calibration = metrics.get("calibration") or {}
    if calibration.get("threshold_source") == "dev":
        console.print(
            f"out of scope: {calibration['oos_score']} score below {calibration['oos_threshold']:.4g}, chosen on dev"
            + "".join(f"; {name}: OOS recall {m['oos_recall']:.3f} at in-scope {m['in_scope_accuracy']:.3f}"
                      for name, m in (calibration.get("oos_dev") or {}).items()),
            soft_wrap=True,
        )
    if calibration.get("neighbour_threshold") is not None:
        console.print(
            f"out of scope: similarity to the nearest training examples below {calibration['neighbour_threshold']:.4g} "
            f"(keeps {calibration['neighbour_accept_rate']:.0%} of {calibration['neighbour_dev_size']} in-scope dev "
            "messages; no out-of-scope data needed)", soft_wrap=True,
        )
    if calibration.get("intent_threshold") is not None:
        console.print(
            f"answers: intent confidence {calibration['intent_threshold']:.4g} or more (its dev answers were right "
            f"{calibration['intent_precision']:.0%} of the time; the domain's thresholds.intent overrides it)",
            soft_wrap=True,
        )



def few_steps_warning(epochs: int | None, examples: int, batch_size: int, min_steps: int) -> str | None:
    """Why an explicit ``--epochs`` may train too little: fewer optimiser steps than ``training.min_steps``, which
    would otherwise raise the epochs for a small data set (None when it does not)."""
    if epochs is None or not min_steps or examples <= 0:
        return None
    per_epoch = math.ceil(examples / batch_size)
    steps = epochs * per_epoch
    if steps >= min_steps:
        return None
    return (f"--epochs {epochs} trains for only {steps} optimiser steps on {examples} examples; without --epochs, "
            f"training.min_steps ({min_steps}) would train {math.ceil(min_steps / per_epoch)} epochs. A small data set "
            "usually needs those steps: leave --epochs out, or raise it.")
