"""``csbot nlu ...``: use a trained NLU model directly."""

from __future__ import annotations

import json
import sys

import click

from bot.cli.options import backend_option, config_option, device_option


@click.group("nlu")
def nlu_group() -> None:
    """Parse messages with a trained NLU model."""


@nlu_group.command("parse")
@click.option("--model", "model_dir", type=click.Path(file_okay=False), required=True, help="Trained model directory.")
@backend_option
@device_option
@config_option
@click.option("--oos-threshold", type=click.FloatRange(0, 1), default=None, help="Override the out-of-scope threshold of a model without one chosen on dev.")
@click.argument("texts", nargs=-1)
def parse_command(model_dir, backend, device, config_path, oos_threshold, texts) -> None:
    """Print parse results as JSON for TEXTS (or for each line of stdin when none are given).

    An empty or blank text is a usage error: there is nothing to parse, and a model would still name an intent.
    """
    from csbot.settings import load_config
    from nlu.inference import NLUModel

    blank = [number for number, text in enumerate(texts, start=1) if not text.strip()]
    if blank:
        which = "the text" if len(texts) == 1 else f"text {blank[0]} of {len(texts)}"
        raise click.BadParameter(f"{which} is empty or blank; give a message to parse", param_hint="'TEXTS'")
    config = load_config(config_path, {"nlu.backend": backend, "nlu.device": device,
                                       "nlu.oos_threshold": oos_threshold}).nlu
    if not texts:
        texts = tuple(line.rstrip("\n") for line in sys.stdin if line.strip())
    if not texts:
        raise click.UsageError("give at least one text, as arguments or on stdin")
    model = NLUModel.load(
        model_dir, device=config.device, backend=config.backend, batch_size=config.batch_size,
        max_length=config.max_length, oos_threshold=config.oos_threshold,
    )
    results = [r.to_dict() for r in model.parse(list(texts))]
    click.echo(json.dumps(results[0] if len(results) == 1 else results, indent=2, ensure_ascii=False))
