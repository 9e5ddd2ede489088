"""``csbot review import``: check reviewed files and turn them into training examples and Q&A records.

The labels the model knows come from its label maps (``labels.json`` in the model folder), read as JSON:
the model itself is not loaded. See :mod:`training.review` and ``docs/retraining.md`` ("Review").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from bot.cli.options import config_option


@click.group("review")
def review_group() -> None:
    """Import the decisions of a person who reviewed a file from `csbot transcripts export`."""


def _label_maps(model_dir: str | None, config_path: str | None) -> tuple[Path, dict[str, Any]]:
    """The model folder (``--model``, else ``bot.model_dir`` of the config) and its ``labels.json``."""
    from csbot.errors import ArtefactError

    if model_dir:
        folder = Path(model_dir)
    else:
        from csbot.settings import load_config

        folder = load_config(config_path).paths.model_dir
    path = folder / "labels.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtefactError("no label maps here: is this a trained model folder? (see --model)", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtefactError(f"cannot read the label maps: {exc}", path) from exc
    if not isinstance(data, dict) or not isinstance(data.get("intents"), list) \
            or not isinstance(data.get("slot_types"), list):
        raise ArtefactError("invalid label maps: expected 'intents' and 'slot_types' lists", path)
    return folder, data


@review_group.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--model", "model_dir", type=click.Path(file_okay=False), default=None,
              help="Model folder whose labels are known (default from config: bot.model_dir).")
@config_option
@click.option("--allow-new-labels", is_flag=True,
              help="Accept intents and entity types the model does not know (listed in the summary).")
@click.option("--allow-unreviewed", is_flag=True, help="Skip lines with no decision instead of refusing the file.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for examples.jsonl, out_of_scope.jsonl, qa.jsonl, decisions.json "
                   "(default: 'reviewed' beside the first file).")
def import_command(files: tuple[str, ...], model_dir: str | None, config_path: str | None, allow_new_labels: bool,
                   allow_unreviewed: bool, out_dir: str | None) -> None:
    """Check every line of the reviewed FILES, then write what they decided.

    Nothing is written when any line is bad: the error names its file and line.
    """
    from training.review import import_reviewed, write_reviewed

    if model_dir and config_path:
        raise click.UsageError("give --model or --config, not both")
    folder, labels = _label_maps(model_dir, config_path)
    data = import_reviewed(list(files), set(labels["intents"]), set(labels["slot_types"]), allow_new_labels,
                           oos_label=labels.get("oos_label") or None, allow_unreviewed=allow_unreviewed)
    out = Path(out_dir) if out_dir else Path(files[0]).parent / "reviewed"
    written = write_reviewed(data, out)
    total = sum(data.decisions.values())
    counts = ", ".join(f"{name} {count}" for name, count in sorted(data.decisions.items()))
    click.echo(f"read {total} reviewed lines from {len(files)} file(s) (labels of {folder}): {counts}")
    for kind, names in data.new_labels.items():
        click.echo(f"new {kind.replace('_', ' ')}: {', '.join(names)}")
    parts = [f"{name} {count}" for name, count in written.items()] or ["nothing to train on"]
    click.echo(f"wrote to {out}: {', '.join(parts)}, decisions.json")
