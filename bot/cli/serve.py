"""``csbot serve``: the webhook server (REST and the other channels under ``channels:``, health, metrics).

The server never trains: without the NLU model or the Q&A index it refuses to start and says what to run.
"""

from __future__ import annotations

from pathlib import Path

import click

from bot.cli.options import config_option
from csbot.errors import ConfigError, ModelError


def check_models(model_dir: Path, index_dir: Path) -> None:
    """Refuse to serve without a trained model or a built index, naming the command that makes them."""
    if not (model_dir / "csbot-model.json").is_file():
        raise ModelError(f"no NLU model in {model_dir}; the server never trains: run `csbot train` on your data "
                         "(or `csbot chat` once, which trains the demo's), then `csbot serve` again")
    if not (index_dir / "csbot-index.json").is_file():
        raise ModelError(f"no Q&A index in {index_dir}; the server never builds one: run `csbot index build` "
                         "(or `csbot chat` once, which builds the demo's), then `csbot serve` again")


@click.command("serve")
@config_option
@click.option("--host", default=None, help="Address to listen on (default from config: server.host, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="TCP port to listen on (default from config: server.port, 5005).")
@click.option("--workers", type=int, default=None, help="Worker processes (only 1 for now).")
def serve_command(config_path, host, port, workers) -> None:
    """Serve the bot over HTTP: the channels under `channels:` in the config, /health, /ready, /version, /metrics."""
    import asyncio

    from bot.app import BotApp
    from bot.server import build_channels, run_server
    from csbot.settings import load_config

    config = load_config(config_path, {"server.host": host, "server.port": port, "server.workers": workers})
    if config.server.workers > 1:
        raise ConfigError(f"server.workers: {config.server.workers} workers are not supported yet; "
                          "run with one worker (several processes behind a load balancer, sharing Redis)")
    paths = config.paths
    check_models(paths.model_dir, paths.index_dir)
    channels = build_channels(config.channels)
    if not channels:
        click.echo("note: no channel enabled under `channels:` in the config; serving /health, /ready, /version "
                   "and /metrics only", err=True)
    app = BotApp.build(config)

    def listening(addresses: list[str]) -> None:
        names = ", ".join(channel.name for channel in channels) or "none"
        click.echo(f"csbot serving on {', '.join(addresses)} (channels: {names}); Ctrl+C to stop", err=True)

    asyncio.run(run_server(app, channels, config.server, on_listening=listening))
