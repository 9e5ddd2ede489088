"""Options shared by several commands; the choices of pluggable kinds come from :mod:`csbot.plugins`."""

from __future__ import annotations

import click

from csbot.plugins import IMPORTERS, NLU_BACKENDS, QA_SOURCES, VECTOR_INDEXES

#: Training data formats (``--format`` of train, evaluate, data).
FORMAT_CHOICES = click.Choice(sorted(IMPORTERS.names()))
#: Formats Q&A can be read from (``csbot index --format``): the Q&A sources, then every training data format.
QA_FORMAT_CHOICES = click.Choice([*QA_SOURCES.names(), *sorted(IMPORTERS.names())])
#: ``auto`` (chosen by corpus size) or one of the vector index kinds (``--index-type``).
INDEX_TYPE_CHOICES = click.Choice(["auto", *VECTOR_INDEXES.names()])


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
    type=click.Choice(NLU_BACKENDS.names()),
    default=None,
    help="Inference backend: torch, or onnx / onnx-int8 for the optimised CPU path.",
)
