"""What a training run shows while it runs: a progress bar with the running loss, and one line per epoch."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def epoch_line(record: dict[str, Any]) -> str:
    """One epoch's summary: ``epoch 3 · loss 0.4120 · dev intent_accuracy 0.9500 · ... · 12s``."""
    parts = [f"epoch {record['epoch']}", f"loss {record['loss']:.4f}" if record["loss"] is not None else ""]
    if "dev_score" in record:
        parts.append(f"dev {record['dev_primary']} {record['dev_score']:.4f}")
        if record.get("dev_intent_accuracy") is not None:
            parts.append(f"intent acc {record['dev_intent_accuracy']:.4f}")
        if record.get("dev_slot_f1") is not None:
            parts.append(f"slot F1 {record['dev_slot_f1']:.4f}")
    parts.append(f"{record['seconds']:.0f}s")
    return " · ".join(p for p in parts if p)


class TrainingProgress:
    """A rich progress bar over the optimiser steps when ``show``; otherwise epochs go to the log.

    Use as a context manager: the bar starts on entry and stops on exit, also when training fails.
    """

    def __init__(self, total_steps: int, show: bool) -> None:
        self._bar: Any = None
        self._task: Any = None
        if show:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                transient=False,
            )
            self._task = self._bar.add_task("training", total=total_steps, loss=float("nan"))

    def __enter__(self) -> TrainingProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def step(self, loss: float) -> None:
        """One optimiser step done; ``loss`` is the running mean shown beside the bar."""
        if self._bar is not None:
            self._bar.update(self._task, advance=1, loss=loss)

    def epoch(self, record: dict[str, Any]) -> None:
        """Print an epoch's summary above the bar, or log it when there is no bar."""
        line = epoch_line(record)
        if self._bar is not None:
            self._bar.console.print(line)
        else:
            log.info("%s", line)


__all__ = ["TrainingProgress", "epoch_line"]
