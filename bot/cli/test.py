"""``csbot test stories``: run scripted conversations against the bot and report the steps that failed."""

from __future__ import annotations

import click

from bot.cli.options import config_option


@click.group("test")
def test_group() -> None:
    """Test a bot with scripted conversations."""


@test_group.command("stories")
@click.argument("path", type=click.Path(exists=True), default=None, required=False)
@config_option
@click.option("--model", "model_dir", default=None, help="NLU model directory (default from config).")
@click.option("--index", "index_dir", default=None, help="Q&A index directory (default from config).")
@click.option("--redis", "redis_url", default=None, help="Run against a Redis session store at this URL.")
@click.option("-q", "--quiet", is_flag=True, help="Print failures and the summary only.")
def stories_command(path, config_path, model_dir, index_dir, redis_url, quiet) -> None:
    """Run the stories in PATH (a YAML file or a folder; default: bot.stories of the config) and exit 1 if any
    step fails."""
    import asyncio
    import sys
    from pathlib import Path

    from rich.console import Console
    from rich.markup import escape

    from bot.app import BotApp
    from bot.stories import load_stories, run_story
    from csbot.settings import load_config
    from training.prepare import prepare_models

    console = Console(highlight=False)
    config = load_config(config_path, {"bot.model_dir": model_dir, "bot.index_dir": index_dir,
                                       "sessions.store": "redis" if redis_url else None, "sessions.url": redis_url})
    stories = load_stories(path or config.paths.stories)
    prepare_models(config, show_progress=sys.stderr.isatty(), say=lambda t: console.print(f"[dim]{t}[/dim]"))
    app = BotApp.build(config, transcripts=False)

    async def run_all():
        async with app:
            return [await run_story(app, story) for story in stories]

    results = asyncio.run(run_all())
    failed = [r for r in results if not r.passed]
    for result in results:
        if result.passed and not quiet:
            console.print(f"[green]PASS[/green] {escape(result.name)}")
        for failure in result.failures:
            console.print(f"[red]FAIL[/red] {escape(result.name)}, step {failure.step}: you> {escape(failure.said)}")
            for problem in failure.problems:
                console.print(f"     - {escape(problem)}")
            console.print(f"     bot said: {escape(failure.reply) or '(nothing)'}")
    console.print(f"{len(results) - len(failed)}/{len(results)} stories passed ({Path(path or config.paths.stories)})")
    if failed:
        sys.exit(1)
