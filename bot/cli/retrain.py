"""``csbot retrain``: a candidate model from the training data plus reviewed transcripts, compared with the current
model, registered, and promoted when the gate lets it (see docs/retraining.md).

The steps: the registry's current model (or ``--from VERSION``; with an empty registry, the config's
``bot.model_dir`` is registered and promoted first, as the version everything descends from); the reviewed
files checked against that model's labels (:mod:`training.review.importer`: a bad line stops everything);
the candidate trained (warm start unless ``--from-scratch``) and compared on dev and the regression set
(:mod:`training.retrain`); registered with its metrics, report and the gate's decision; promoted when the gate
passed (or ``--force``), and the servers sharing the session Redis told. Reviewed Q&A pairs become a new index
version the same way (no gate: an index has no dev metric), promoted with the model.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from bot.cli.options import config_option


@click.command("retrain")
@config_option
@click.option("--registry", "registry_dir", type=click.Path(file_okay=False), default=None,
              help="The registry directory (default: the config's registry.path).")
@click.option("--from", "from_version", default=None, help="The model version to start from (default: the current one).")
@click.option("--data", "data_paths", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Training data (default: the config's bot.nlu_data). Repeatable.")
@click.option("--reviewed", "reviewed_paths", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Reviewed files (csbot transcripts export, then a person's decisions). Repeatable.")
@click.option("--dev", "dev_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The dev set both models are compared on (default: a stratified split of the data).")
@click.option("--regression", "regression_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A frozen regression set both models are also compared on.")
@click.option("--from-scratch", is_flag=True, help="Train from the base encoder instead of the current model.")
@click.option("--allow-new-labels", is_flag=True, help="Reviewed items may bring intents and entity types the model lacks.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Epochs (default: training.epochs).")
@click.option("--tolerance", type=click.FloatRange(0, 1), default=None,
              help="How much worse the primary metric may be on either set (default: registry.tolerance).")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Where the comparison report goes (default: beside the candidate in the registry).")
@click.option("--no-promote", is_flag=True, help="Register the candidate only; promote it later with csbot models promote.")
@click.option("--force", is_flag=True, help="Promote even when the gate refuses.")
@click.option("--by", default=None, help="Who promotes (default: the OS user).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def retrain_command(config_path: str | None, registry_dir: str | None, from_version: str | None, data_paths: tuple[str, ...],
                    reviewed_paths: tuple[str, ...], dev_path: str | None, regression_path: str | None, from_scratch: bool,
                    allow_new_labels: bool, epochs: int | None, tolerance: float | None, report_dir: str | None,
                    no_promote: bool, force: bool, by: str | None, no_progress: bool) -> None:
    """Retrain the NLU model from data and reviewed transcripts; compare, register, and promote if not worse."""
    from bot.cli.models import _tell_servers, _user
    from csbot.errors import ConfigError, PromotionRefusedError
    from csbot.registry import create_registry
    from csbot.settings import load_config
    from training.data import load_dataset
    from training.retrain import RetrainRequest, retrain

    config = load_config(config_path, {"training.epochs": epochs})
    root = Path(registry_dir) if registry_dir else config.paths.registry
    if root is None:
        raise ConfigError("retraining needs a model registry: set registry.path in the config or pass --registry DIR")
    registry = create_registry(config.registry, root)
    by = by or _user()
    base = _base_model(registry, config, from_version, by)
    data = load_dataset([str(p) for p in (data_paths or config.paths.nlu_data)])
    reviewed = _reviewed(reviewed_paths, base.path if base else None, allow_new_labels) if reviewed_paths else None
    extra = (reviewed.examples + reviewed.out_of_scope) if reviewed else []
    tolerance = config.registry.tolerance if tolerance is None else tolerance
    with tempfile.TemporaryDirectory(prefix="candidate-", dir=_scratch(root)) as scratch:
        candidate = Path(scratch) / "model"
        report = Path(report_dir) if report_dir else Path(scratch) / "report"
        result = retrain(RetrainRequest(
            config=config.training, data=data, extra=extra,
            dev=load_dataset([dev_path]) if dev_path else None,
            regression=load_dataset([regression_path]) if regression_path else None,
            base_model=base.path if base else None, from_scratch=from_scratch, out_dir=candidate,
            report_dir=report, tolerance=tolerance, show_progress=not no_progress))
        if report_dir is None:  # kept in the registry, under the candidate's version
            report = _keep_report(report, root, _version_of(candidate))
        entry = registry.register("model", candidate, parent=base.version if base else None, metrics=result.metrics,
                                  report=str(report), gate=result.gate.to_dict(),
                                  note=f"retrained on {len(data)} examples and {len(extra)} reviewed "
                                       f"({result.corrected} corrections)")
    shown_report = report
    click.echo(f"candidate {entry.version} registered (parent {base.version if base else 'none'}); "
               f"report: {shown_report / 'report.md'}")
    for line in result.gate.reasons:
        click.echo(f"  {line}")
    index_entry = _index_version(registry, config, reviewed.qa) if reviewed and reviewed.qa else None
    if no_promote:
        click.echo("not promoted (--no-promote): csbot models promote " + entry.version)
        return
    if not result.gate.passed and not force:
        raise PromotionRefusedError(f"candidate {entry.version} not promoted: {'; '.join(result.gate.reasons)} "
                                    f"(see {shown_report / 'report.md'}; csbot models promote {entry.version} "
                                    "--force to promote it anyway)")
    registry.promote("model", entry.version, by=by, note="retrained" + (" (forced past the gate)" if not result.gate.passed else ""))
    click.echo(f"promoted model {entry.version}")
    if index_entry is not None:
        registry.promote("index", index_entry.version, by=by, note="reviewed Q&A pairs")
        click.echo(f"promoted index {index_entry.version}")
    _tell_servers(config_path)


def _scratch(root: Path) -> Path:
    """A folder for the candidate while it trains: inside the registry (one file system: registering moves
    nothing across disks), created when missing."""
    from csbot.errors import RegistryError

    path = root / ".scratch"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RegistryError(f"{root}: the registry directory cannot be written: {exc.strerror or exc}") from exc
    return path


def _version_of(model_dir: Path) -> str:
    import json

    return str(json.loads((model_dir / "csbot-model.json").read_text(encoding="utf-8"))["version"])


def _keep_report(report: Path, root: Path, version: str) -> Path:
    """Move the comparison report to ``ROOT/reports/VERSION`` (a report of the same version is replaced)."""
    import shutil

    kept = root / "reports" / version
    kept.parent.mkdir(parents=True, exist_ok=True)
    if kept.exists():
        shutil.rmtree(kept)
    shutil.move(str(report), str(kept))
    return kept


def _base_model(registry, config, from_version: str | None, by: str):
    """The model to start from and compare with: ``--from``, the current one, or (empty registry) the config's
    ``bot.model_dir`` registered and promoted as the first version; None when there is no model at all."""
    if from_version is not None or registry.current("model") is not None:
        return registry.resolve("model", from_version)
    model_dir = config.paths.model_dir
    if not (model_dir / "csbot-model.json").is_file():
        return None
    entry = registry.register("model", model_dir, note=f"the model of {model_dir}, before the first retraining")
    click.echo(f"registered the current model {entry.version} ({model_dir}) as the first version")
    return registry.promote("model", entry.version, by=by, note="first version")


def _reviewed(paths: tuple[str, ...], model_dir: Path | None, allow_new_labels: bool):
    """The reviewed files, checked against the labels of ``model_dir`` (every label is new without a model)."""
    import json

    from training.review.importer import import_reviewed

    labels: set[str] = set()
    entity_types: set[str] = set()
    oos_label = None
    if model_dir is not None:
        saved = json.loads((model_dir / "labels.json").read_text(encoding="utf-8"))
        labels, entity_types = set(saved.get("intents", [])), set(saved.get("slot_types", []))
        oos_label = saved.get("oos_label")
    data = import_reviewed(list(paths), labels, entity_types, allow_new_labels or model_dir is None, oos_label=oos_label)
    click.echo(f"reviewed: {sum(data.decisions.values())} items ({', '.join(f'{k} {v}' for k, v in sorted(data.decisions.items()))}); "
               f"{len(data.examples)} examples, {len(data.out_of_scope)} out of scope, {len(data.qa)} Q&A pairs")
    return data


def _index_version(registry, config, records):
    """A new index version with the reviewed Q&A pairs, registered (promoted with the model)."""
    from training.qa_update import update_index

    current = registry.current("index")
    base = current.path if current is not None else config.paths.index_dir
    with tempfile.TemporaryDirectory(prefix="index-", dir=_scratch(registry.root)) as scratch:
        update = update_index(base if base.is_dir() else None, records, config.retrieval, Path(scratch) / "index")
        entry = registry.register("index", update.index_dir, parent=current.version if current else None,
                                  note=f"{update.added} Q&A pairs added, {update.replaced} corrected from review")
    click.echo(f"index {entry.version} registered: {update.added} Q&A pairs added, {update.replaced} corrected")
    return entry


__all__ = ["retrain_command"]
