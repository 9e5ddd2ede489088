"""``csbot chat``: talk to the bot in the terminal (the demo shop unless another config is given)."""

from __future__ import annotations

import sys

import click

from bot.cli.options import config_option


@click.command("chat")
@config_option
@click.option("--redis", "redis_url", default=None, help="Keep sessions in Redis at this URL instead of memory.")
@click.option("--model", "model_dir", default=None, help="NLU model directory (default from config: bot.model_dir).")
@click.option("--index", "index_dir", default=None, help="Q&A index directory (default from config: bot.index_dir).")
@click.option("--session", "session_id", default=None,
              help="Conversation id to use; with --redis, the same id continues an earlier conversation.")
@click.option("--no-transcripts", is_flag=True, help="Do not write the transcript log.")
def chat_command(config_path, redis_url, model_dir, index_dir, session_id, no_transcripts) -> None:
    """Chat with the bot in the terminal; trains the model and builds the index first when missing."""
    import asyncio

    from rich.console import Console

    from bot.app import BotApp
    from bot.channels.repl import ReplChannel
    from csbot.settings import load_config
    from training.prepare import prepare_models

    console = Console(highlight=False)
    config = load_config(config_path, {"bot.model_dir": model_dir, "bot.index_dir": index_dir,
                                       "sessions.store": "redis" if redis_url else None, "sessions.url": redis_url})
    check_session_store(config)  # a Redis that does not answer fails now, not after minutes of training
    prepare_models(config, show_progress=sys.stderr.isatty(), say=lambda text: console.print(f"[dim]{text}[/dim]"))
    app = BotApp.build(config, transcripts=not no_transcripts)
    versions = app.versions()
    about = f"NLU model {versions.model or '-'}, Q&A index {versions.index or 'none'}"
    channel = ReplChannel(console, title=config.bot.name, session_id=session_id, reset=app.reset, about=about)
    app.register_output(channel.output_channel())
    with asyncio.Runner() as runner:  # one event loop: Redis connections and the transcript writer live on it
        runner.run(app.start())
        try:
            runner.run(channel.serve(app.handle))
        except KeyboardInterrupt:
            console.print("\nbye")
        finally:
            runner.run(app.stop())


def check_session_store(config) -> None:
    """Connect to the configured session store and close again; its error (Redis not answering, with the URL and
    a hint) is raised as it would be at start-up. The in-memory store needs no check."""
    import asyncio

    from bot.sessions import create_store

    if config.sessions.store == "memory":
        return
    store = create_store(config.sessions)

    async def check() -> None:
        try:
            await store.start()
        finally:
            try:
                await store.close()
            except Exception:  # noqa: BLE001 - closing a store that never connected; the start error is the one to report
                pass

    asyncio.run(check())
