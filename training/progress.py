"""What a training run shows while it runs: a progress bar with the running loss, one line per epoch, and a
line when it ends (how many epochs ran, and whether early stopping ended it before the planned epochs)."""

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

    def __init__(self, total_steps: int, show: bool, epochs: int | None = None, early_stopping: bool = False) -> None:
        self._bar: Any = None
        self._task: Any = None
        self.epochs = epochs
        self.early_stopping = early_stopping
        self.steps = 0
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
            self._task = self._bar.add_task(self.description(), total=total_steps, loss=float("nan"))

    def __enter__(self) -> TrainingProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def description(self) -> str:
        """The bar's label: with early stopping, the estimate is the longest the run can take, and it says so."""
        if self.early_stopping and self.epochs:
            return f"training (at most {self.epochs} epochs; may stop early)"
        return f"training ({self.epochs} epochs)" if self.epochs else "training"

    def step(self, loss: float) -> None:
        """One optimiser step done; ``loss`` is the running mean shown beside the bar."""
        self.steps += 1
        if self._bar is not None:
            self._bar.update(self._task, advance=1, loss=loss)

    def epoch(self, record: dict[str, Any]) -> None:
        """Print an epoch's summary above the bar, or log it when there is no bar."""
        self._say(epoch_line(record))

    def finish(self, epochs_run: int, best_epoch: int, seconds: float, reason: str = "") -> str:
        """The end of training, said once: how many epochs ran, which was kept, how long it took, and why it
        ended before the planned epochs (``reason``: ``"early"`` for early stopping, ``"max_steps"``). The bar
        is completed, so a run that stopped early does not end on a half-full bar. Returns the line."""
        line = finish_line(epochs_run, self.epochs, best_epoch, seconds, reason)
        if self._bar is not None:
            self._bar.update(self._task, total=max(self.steps, 1), completed=max(self.steps, 1),
                             description="training done")
        self._say(line)
        return line

    def _say(self, line: str) -> None:
        if self._bar is not None:
            self._bar.console.print(line)
        else:
            log.info("%s", line)


def finish_line(epochs_run: int, epochs: int | None, best_epoch: int, seconds: float, reason: str = "") -> str:
    """``training done: 7 of 40 epochs (stopped early: no dev improvement), kept epoch 2 · 31s``."""
    planned = f" of {epochs}" if epochs and epochs_run < epochs else ""
    why = {"early": " (stopped early: no dev improvement)", "max_steps": " (max_steps reached)"}.get(reason, "")
    kept = f", kept epoch {best_epoch}" if best_epoch and best_epoch != epochs_run else ""
    return f"training done: {epochs_run}{planned} epochs{why}{kept} · {seconds:.0f}s"


__all__ = ["TrainingProgress", "epoch_line", "finish_line"]
