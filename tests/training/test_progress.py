"""The training progress: its label says the run may stop early, and the end of training is said once."""

from __future__ import annotations

import logging

from training.progress import TrainingProgress, finish_line


def test_the_label_says_early_stopping_may_end_the_run_sooner():
    assert "may stop early" in TrainingProgress(10, show=False, epochs=5, early_stopping=True).description()
    assert "may stop early" not in TrainingProgress(10, show=False, epochs=5, early_stopping=False).description()


def test_the_end_of_training_says_why_it_ended():
    assert finish_line(4, 40, 2, 12.4, "early") == (
        "training done: 4 of 40 epochs (stopped early: no dev improvement), kept epoch 2 · 12s")
    assert finish_line(10, 10, 10, 3.0) == "training done: 10 epochs · 3s"
    assert "max_steps" in finish_line(1, 10, 1, 1.0, "max_steps")


def test_the_bar_is_completed_and_the_end_printed(caplog, capsys):
    progress = TrainingProgress(100, show=True, epochs=10, early_stopping=True)
    with progress:
        for _ in range(20):
            progress.step(0.5)
        progress.finish(2, 1, 5.0, "early")
    task = progress._bar.tasks[0]
    assert task.completed == task.total == 20
    assert "training done: 2 of 10 epochs (stopped early" in " ".join(capsys.readouterr().out.split())
    with caplog.at_level(logging.INFO, logger="training.progress"):
        TrainingProgress(10, show=False, epochs=3).finish(3, 3, 1.0)
    assert "training done: 3 epochs" in caplog.text
