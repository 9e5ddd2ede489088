"""``csbot chat``: talk to the bot in the terminal (the demo shop unless another config is given)."""

from __future__ import annotations

import sys

import click

from bot.cli.options import config_option


@click.command("chat")
@config_option
@click.option("--redis", "redis_url", default=None, help="Keep sessions in Redis at this URL instead of memory.")
@click.option("--model", "model_dir", default=None, help="NLU model directory (default from config: models/demo).")
@click.option("--index", "index_dir", default=None, help="Q&A index directory (default from config: models/demo-index).")
@click.option("--session", "session_id", default=None,
              help="Conversation id to use; with --redis, the same id continues an earlier conversation.")
@click.option("--no-transcripts", is_flag=True, help="Do not write the transcript log.")
def chat_command(config_path, redis_url, model_dir, index_dir, session_id, no_transcripts) -> None:
    """Chat with the bot in the terminal; trains the model and builds the index first when missing."""
    import asyncio

    from rich.console import Console

    from bot.app import BotApp, BotConfig, BotPaths, prepare_models
    from bot.channels.repl import Repl

    console = Console(highlight=False)
    paths = BotPaths(BotConfig.from_file(config_path, model_dir=model_dir, index_dir=index_dir), config_path)
    prepare_models(paths, config_path, show_progress=sys.stderr.isatty(), say=lambda text: console.print(f"[dim]{text}[/dim]"))
    app = BotApp.build(config_path, redis_url=redis_url, model_dir=model_dir, index_dir=index_dir,
                       transcripts=not no_transcripts)
    with asyncio.Runner() as runner:  # one event loop: Redis connections and the transcript writer live on it
        runner.run(app.start())
        try:
            code = Repl(app.manager, console, session_id=session_id).run(runner)
        finally:
            runner.run(app.stop())
    sys.exit(code) if code else None
