"""``csbot serve``: the webhook server (REST and the other channels under ``channels:``, health, metrics).

The server never trains: without the NLU model or the Q&A index it refuses to start and says what to run.
With ``--workers N`` (N > 1) it runs N worker processes on one port, sharing Redis (:mod:`bot.server.workers`).
"""

from __future__ import annotations

from pathlib import Path

import click

from bot.cli.options import config_option
from csbot.errors import ModelError


def check_models(model_dir: Path, index_dir: Path) -> None:
    """Refuse to serve without a trained model or a built index, naming the command that makes them."""
    if not (model_dir / "csbot-model.json").is_file():
        raise ModelError(f"no NLU model in {model_dir}; the server never trains: run `csbot prepare` with the same "
                         "config (or `csbot train` on your data), then `csbot serve` again")
    if not (index_dir / "csbot-index.json").is_file():
        raise ModelError(f"no Q&A index in {index_dir}; the server never builds one: run `csbot prepare` with the "
                         "same config (or `csbot index build`), then `csbot serve` again")


@click.command("serve")
@config_option
@click.option("--host", default=None, help="Address to listen on (default from config: server.host, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="TCP port to listen on (default from config: server.port, 5005).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes on one port, sharing Redis (default from config: server.workers, 1).")
def serve_command(config_path, host, port, workers) -> int:
    """Serve the bot over HTTP: the channels under `channels:` in the config, /health, /ready, /version, /metrics."""

    from bot.app import BotApp, check_options
    from bot.server import build_channels, run_server
    from bot.server.run import run_loop
    from csbot.settings import load_config

    overrides = {"server.host": host, "server.port": port, "server.workers": workers}
    config = load_config(config_path, overrides)
    check_options(config)  # several workers need the Redis store
    registry = None
    if config.paths.registry is not None:
        from csbot.registry import create_registry

        registry = create_registry(config.registry, config.paths.registry)
    from bot.reload import artefact_dirs

    check_models(*artefact_dirs(config, registry))  # the registry's promoted versions, else bot.model_dir/index_dir
    channels = build_channels(config.channels)
    if not channels:
        click.echo("note: no channel enabled under `channels:` in the config; serving /health, /ready, /version "
                   "and /metrics only", err=True)
    count = config.server.workers

    def listening(addresses: list[str]) -> None:
        names = ", ".join(channel.name for channel in channels) or "none"
        workers_note = f", {count} workers" if count > 1 else ""
        click.echo(f"csbot serving on {', '.join(addresses)} (channels: {names}{workers_note}); Ctrl+C to stop",
                   err=True)

    if count > 1:
        from bot.server.workers import run_workers

        return run_workers(config, count, config_path=str(config_path) if config_path else None,
                           overrides={key: value for key, value in overrides.items() if value is not None},
                           on_listening=listening, say=lambda line: click.echo(line, err=True))
    app = BotApp.build(config)
    run_loop(run_server(app, channels, config.server, on_listening=listening), config.server.event_loop)
    return 0
