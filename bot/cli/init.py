"""``csbot init``: a new bot project to edit (config, domain, NLU data, Q&A, an action, stories, a README).

The files are copied from :mod:`bot`'s package data (``bot/project_template/``), so an installed csbot makes the
same project as a checkout. ``--from-rasa`` converts a Rasa project instead (:mod:`bot.rasa.project`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import click

#: Template files whose name in the project differs (package data skips dot-files).
RENAMED = {"gitignore": ".gitignore"}


def template_dir() -> Path:
    """The packaged project template."""
    return Path(__file__).resolve().parents[1] / "project_template"


def template_files() -> list[Path]:
    """The template's files, relative to :func:`template_dir` (caches left out)."""
    root = template_dir()
    return sorted(p.relative_to(root) for p in root.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def create_project(target: Path, force: bool = False) -> list[Path]:
    """Copy the template into ``target`` and return the files written (relative to it).

    A ``target`` that exists and is not empty is refused (:class:`~csbot.errors.ConfigError`, nothing written)
    unless ``force``, which overwrites the template's files there and leaves every other file alone.
    """
    check_target(target, force)
    written = []
    for relative in template_files():
        destination = target / relative.parent / RENAMED.get(relative.name, relative.name)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template_dir() / relative, destination)
        written.append(destination.relative_to(target))
    return written


def check_target(target: Path, force: bool) -> None:
    """Refuse a file, or a folder that is not empty (unless ``force``), before anything is written."""
    from csbot.errors import ConfigError

    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target}: exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise ConfigError(f"{target}: the folder is not empty; choose a new or empty folder, or pass --force to "
                          "write the project's files into it (files of the same name are overwritten)")


def conversion_summary(report, target: Path) -> str:
    """The counts of a Rasa conversion's report and where its notes are (the whole report is in the project)."""
    markdown = report.to_markdown()
    counts = markdown.split("## Files written", 1)[0].rstrip()
    notes = getattr(report, "notes", [])
    written = target / "conversion-report.md"
    where = f"; all of them in {written}" if written.is_file() else ":\n" + "\n".join(f"- {n}" for n in notes)
    return f"{counts}\n\n{len(notes)} notes on what had no equivalent{where if notes else ''}"


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."), required=False)
@click.option("--from-rasa", "rasa_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Convert this Rasa project (domain, NLU data, stories, actions) instead of the starter bot.")
@click.option("--force", is_flag=True, help="Write into a folder that is not empty (same-named files are overwritten).")
def init_command(directory: Path, rasa_dir: Path | None, force: bool) -> None:
    """Create a new bot project in DIRECTORY (default: the current folder, which must be empty).

    The project trains and chats as it is: csbot chat --config DIRECTORY/config.yml. Its README.md says what
    each file is for.
    """
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False)
    target = directory.expanduser()
    if rasa_dir is not None:
        check_target(target, force)
        from bot.rasa.project import convert_project  # only this option needs the converter

        target.mkdir(parents=True, exist_ok=True)
        report = convert_project(rasa_dir.resolve(), target.resolve())
        console.print(escape(conversion_summary(report, target)), soft_wrap=True)
    else:
        written = create_project(target, force)
        console.print(f"created a bot project in {escape(str(target))}:")
        for relative in written:
            console.print(f"  {escape(str(relative))}")
    config = target / "config.yml"
    console.print("next:\n"
                  f"  csbot chat --config {escape(str(config))}            (trains the model first: a few minutes)\n"
                  f"  csbot test stories --config {escape(str(config))}\n"
                  "the guide: docs/build-your-bot.md", soft_wrap=True)
