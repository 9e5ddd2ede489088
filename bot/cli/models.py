"""``csbot models ...``: the model registry: list and show versions, register, promote, roll back, reject.

The registry is ``--registry DIR`` or else ``registry.path`` of the config. A version the gate refused when it
was registered (``gate.passed: false``) or that was rejected is promoted only with ``--force``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bot.cli.options import config_option

if TYPE_CHECKING:
    from csbot.registry import Kind, Registry, VersionEntry

KIND_CHOICES = click.Choice(["model", "index"])
#: Metric names shown in ``list`` when an entry has them (the primary metrics of NLU and retrieval evaluation).
_PRIMARY = ("intent_accuracy", "intent_micro_f1", "joint_score", "oos_balanced", "answer_at_1", "containment")

registry_option = click.option("--registry", "registry_dir", type=click.Path(file_okay=False), default=None,
                               help="Registry directory (default from config: registry.path).")
json_option = click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
by_option = click.option("--by", default=None, help="Who does it, recorded with the version (default: your user name).")


def kind_option(help_text: str, default: str | None = None):
    return click.option("--kind", type=KIND_CHOICES, default=default, show_default=default is not None, help=help_text)


@click.group("models")
def models_group() -> None:
    """The model registry: versions of NLU models and Q&A indexes, which one is current, rollback."""


def _open_registry(registry_dir: str | None, config_path: str | None) -> Registry:
    """``--registry``, else the config's ``registry.path``, opened with the configured backend."""
    from csbot.errors import ConfigError
    from csbot.registry import create_registry
    from csbot.settings import load_config

    config = load_config(config_path)
    path = Path(registry_dir) if registry_dir else config.paths.registry
    if path is None:
        where = f"in {config.source}" if config.source else "in the config (--config FILE)"
        raise ConfigError(f"no model registry: set registry.path {where} or pass --registry DIR")
    return create_registry(config.registry, path)


def _tell_servers(config_path: str | None) -> None:
    """Announce the change on the session Redis (servers sharing it switch at once; others poll the registry)."""
    import asyncio

    from bot.reload import announce
    from csbot.settings import load_config

    config = load_config(config_path)
    if config.sessions.store == "redis" and asyncio.run(announce(config)):
        click.echo("told the servers sharing the session Redis to switch")


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no name for this uid (a container without /etc/passwd entry)
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


def _find(registry: Registry, version: str, kind: Kind | None) -> VersionEntry:
    """The entry of ``version``, in ``kind`` or, when None, in whichever kind holds it."""
    from csbot.errors import ConfigError, UnknownVersionError
    from csbot.registry import KINDS

    if kind is not None:
        return registry.get(kind, version)
    found = []
    for each in KINDS:
        try:
            found.append(registry.get(each, version))
        except UnknownVersionError:
            continue
    if not found:
        raise UnknownVersionError(f"{registry.root}: no version {version!r} in the registry (see `csbot models list`)")
    if len(found) > 1:
        raise ConfigError(f"version {version!r} is both an NLU model and a Q&A index; give --kind model or --kind index")
    return found[0]


def _what(kind: str) -> str:
    from csbot.registry.base import describe

    return describe(kind)  # type: ignore[arg-type]


def _primary_metrics(metrics: dict[str, float], limit: int = 3) -> str:
    chosen = [name for name in metrics if name.rsplit(".", 1)[-1] in _PRIMARY] or sorted(metrics)
    text = ", ".join(f"{name}={metrics[name]:.4f}" for name in chosen[:limit])
    return text + (" ..." if len(chosen) > limit else "")


def _console():
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:  # piped or captured: wide enough that versions are never wrapped
        console = Console(highlight=False, width=220)
    return console


@models_group.command("list")
@config_option
@registry_option
@kind_option("Only NLU models or only Q&A indexes (default: both).")
@json_option
def list_command(config_path: str | None, registry_dir: str | None, kind: Kind | None, as_json: bool) -> None:
    """Every version in the registry, newest registration first; the current one is marked."""
    from rich.markup import escape
    from rich.table import Table

    from csbot.registry import KINDS

    registry = _open_registry(registry_dir, config_path)
    kinds = [kind] if kind else list(KINDS)
    entries = [entry for each in kinds for entry in registry.list(each)]
    if as_json:
        click.echo(json.dumps([entry.to_dict() for entry in entries], indent=2))
        return
    console = _console()
    if not entries:
        console.print(f"no versions in the registry {escape(str(registry.root))}; add one with "
                      "`csbot models register DIR`")
        return
    for each in kinds:
        rows = [entry for entry in entries if entry.kind == each]
        if not rows:
            continue
        table = Table(title=f"{_what(each)}s in {escape(str(registry.root))}", title_justify="left")
        for column in ("", "version", "status", "created", "parent", "metrics", "promoted by", "promoted at"):
            table.add_column(column, no_wrap=column in ("version", "created", "promoted at"))
        for entry in rows:
            table.add_row("*" if entry.is_current else "", escape(entry.version),
                          "current" if entry.is_current else entry.status, entry.created, escape(entry.parent or ""),
                          escape(_primary_metrics(entry.metrics)), escape(entry.promoted_by or ""),
                          entry.promoted_at or "")
        console.print(table)
    console.print("* the current version")


@models_group.command("show")
@click.argument("version")
@config_option
@registry_option
@kind_option("The version's kind (default: whichever holds it).")
@json_option
def show_command(version: str, config_path: str | None, registry_dir: str | None, kind: Kind | None,
                 as_json: bool) -> None:
    """Everything recorded about one version."""
    registry = _open_registry(registry_dir, config_path)
    entry = _find(registry, version, kind)
    data = entry.to_dict()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{_what(entry.kind)} {entry.version}" + ("  (current)" if entry.is_current else ""))
    for key in ("status", "path", "created", "registered", "parent", "data_fingerprint", "report", "promoted_by",
                "promoted_at", "note"):
        if data.get(key):
            click.echo(f"  {key.replace('_', ' ')}: {data[key]}")
    if entry.metrics:
        click.echo("  metrics:")
        for name in sorted(entry.metrics):
            click.echo(f"    {name}: {entry.metrics[name]:.4f}")
    if entry.gate is not None:
        click.echo(f"  gate: {'passed' if entry.gate.get('passed') else 'refused'}")
        for reason in entry.gate.get("reasons") or []:
            click.echo(f"    - {reason}")


@models_group.command("register")
@click.argument("artefact_dir", type=click.Path(exists=True, file_okay=False))
@config_option
@registry_option
@kind_option("The artefact's kind (default: read from its manifest).")
@click.option("--parent", default=None, help="The version it was retrained from.")
@click.option("--note", default="", help="A note kept with the version.")
def register_command(artefact_dir: str, config_path: str | None, registry_dir: str | None, kind: Kind | None,
                     parent: str | None, note: str) -> None:
    """Copy a saved NLU model or Q&A index into the registry as a candidate (its files are verified first)."""
    from csbot.registry import artefact_kind

    registry = _open_registry(registry_dir, config_path)
    kind = kind or artefact_kind(artefact_dir)
    entry = registry.register(kind, Path(artefact_dir), parent=parent, note=note)
    click.echo(f"registered {_what(kind)} {entry.version} ({entry.status}) in {registry.root}")
    if entry.status == "candidate":
        click.echo(f"promote it with: csbot models promote {entry.version} --kind {kind}")


@models_group.command("promote")
@click.argument("version")
@config_option
@registry_option
@kind_option("The version's kind (default: whichever holds it).")
@by_option
@click.option("--note", default="", help="Why it is promoted, kept with the version.")
@click.option("--force", is_flag=True, help="Promote even a version the gate refused or that was rejected.")
def promote_command(version: str, config_path: str | None, registry_dir: str | None, kind: Kind | None,
                    by: str | None, note: str, force: bool) -> None:
    """Make VERSION the current one of its kind; the previous one can be rolled back to."""
    from csbot.errors import PromotionRefusedError
    from csbot.registry import gate_refusal

    registry = _open_registry(registry_dir, config_path)
    entry = _find(registry, version, kind)
    what = f"{_what(entry.kind)} {entry.version}"
    previous = registry.current(entry.kind)
    if previous is not None and previous.version == entry.version:
        click.echo(f"{what} is already the current version")
        return
    reasons = gate_refusal(entry)
    if entry.status == "rejected":
        reasons = [*(reasons or []), f"it was rejected ({entry.note or 'no note'})"]
    if reasons and not force:
        raise PromotionRefusedError(f"not promoting {what}: the gate refused it: {'; '.join(reasons)} "
                                    "(pass --force to promote it anyway)")
    if reasons:
        note = f"forced; {note}" if note else "forced"
    promoted = registry.promote(entry.kind, entry.version, by=by or _user(), note=note)
    was = f" (was {previous.version})" if previous is not None else ""
    click.echo(f"promoted {what}{was} by {promoted.promoted_by}" + (" (forced past the gate)" if reasons else ""))
    _tell_servers(config_path)


@models_group.command("rollback")
@config_option
@registry_option
@kind_option("What to roll back.", default="model")
@by_option
def rollback_command(config_path: str | None, registry_dir: str | None, kind: Kind, by: str | None) -> None:
    """Back to the version promoted before the current one; the current one is retired."""
    registry = _open_registry(registry_dir, config_path)
    previous = registry.current(kind)
    entry = registry.rollback(kind, by=by or _user())
    was = f" from {previous.version}" if previous is not None else ""
    click.echo(f"rolled {_what(kind)} back to {entry.version}{was} by {entry.promoted_by}")
    _tell_servers(config_path)


@models_group.command("reject")
@click.argument("version")
@click.option("--note", required=True, help="Why it is rejected, kept with the version.")
@config_option
@registry_option
@kind_option("The version's kind (default: whichever holds it).")
def reject_command(version: str, note: str, config_path: str | None, registry_dir: str | None,
                   kind: Kind | None) -> None:
    """Mark a candidate rejected: it is never rolled back to, and promoted only with --force."""
    registry = _open_registry(registry_dir, config_path)
    entry = _find(registry, version, kind)
    registry.reject(entry.kind, entry.version, note)
    click.echo(f"rejected {_what(entry.kind)} {entry.version}")

