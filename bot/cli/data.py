"""``csbot data ...``: inspect and convert training data."""

from __future__ import annotations

import os
from collections import Counter

import click

from bot.cli.options import format_option, label_column_option, text_column_option


@click.group("data")
def data_group() -> None:
    """Import, check and convert training data."""


@data_group.command("convert")
@click.argument("sources", nargs=-1, required=True)
@format_option
@text_column_option
@label_column_option
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Canonical JSONL file to write.")
@click.option("--force", is_flag=True, help="Replace --out when it exists already.")
def convert_command(sources, data_format, text_column, label_column, out, force) -> None:
    """Import SOURCES (PATH or PATH@SELECTOR) and write them as canonical JSONL, atomically.

    An existing --out is replaced only with --force; data without examples is an error, and nothing is
    written then (or on any other error).
    """
    from csbot.errors import DataError
    from training.data import load_dataset, write_jsonl

    if os.path.lexists(out) and not force:
        raise click.BadParameter(f"{out} exists already; give --force to replace it", param_hint="'--out'")
    examples = load_dataset(list(sources), data_format, text_column, label_column)
    if not examples:  # the importers refuse empty data; never write an empty file over anything
        raise DataError("no examples to write", out)
    count = write_jsonl(examples, out)
    click.echo(f"wrote {count} examples to {out}")


@data_group.command("stats")
@click.argument("sources", nargs=-1, required=True)
@format_option
@text_column_option
@label_column_option
def stats_command(sources, data_format, text_column, label_column) -> None:
    """Check that SOURCES import and print counts of examples, intents and entities."""
    from training.data import load_dataset

    examples = load_dataset(list(sources), data_format, text_column, label_column)
    intents = Counter(label for ex in examples for label in (ex.intents or ("",)))
    entities = Counter(ent.entity for ex in examples for ent in ex.entities)
    multi = sum(1 for ex in examples if len(ex.intents) != 1)
    click.echo(f"examples: {len(examples)}")
    click.echo(f"intents: {len([k for k in intents if k])} (multi-label or empty examples: {multi})")
    click.echo(f"entity types: {len(entities)}, entities: {sum(entities.values())}")
    for name, count in intents.most_common(10):
        click.echo(f"  {name or '(none)':<40} {count}")
