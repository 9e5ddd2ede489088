"""Options shared by several commands."""

from __future__ import annotations

import click

from training.importers.base import known_formats

FORMAT_CHOICES = click.Choice(sorted(known_formats()))

format_option = click.option(
    "--format",
    "data_format",
    type=FORMAT_CHOICES,
    default=None,
    help="Data format; detected from path and content when omitted.",
)
text_column_option = click.option("--text-column", default=None, help="CSV: the column holding the text.")
label_column_option = click.option("--label-column", default=None, help="CSV: the column holding the intent.")
config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Configuration file (default: configs/default.yaml).",
)
device_option = click.option(
    "--device", default=None, help="auto | cpu | cuda (default from config: auto)."
)
backend_option = click.option(
    "--backend",
    type=click.Choice(["torch", "onnx", "onnx-int8"]),
    default=None,
    help="Inference backend: torch, or onnx / onnx-int8 for the optimised CPU path.",
)
