"""``csbot prepare``: train the model and build the Q&A index a config names, when missing or out of date.

What ``csbot chat`` and ``csbot test stories`` do before they start, as a step of its own for servers,
which never train (``csbot serve`` refuses to start without both): run it once after installing or after
the data changed, then start ``csbot serve``.
"""

from __future__ import annotations

import sys

import click

from bot.cli.options import config_option


@click.command("prepare")
@config_option
def prepare_command(config_path) -> None:
    """Train the NLU model and build the Q&A index of the config when missing or older than their data."""
    from csbot.settings import load_config
    from training.prepare import prepare_models

    config = load_config(config_path)
    prepare_models(config, show_progress=sys.stderr.isatty(), say=lambda text: click.echo(text, err=True))
    paths = config.paths
    click.echo(f"ready: model {paths.model_dir}, index {paths.index_dir}")
