"""Serving until told to stop: the bot started, the application on a TCP site, a clean stop on SIGINT/SIGTERM.

On a signal the server stops accepting connections, lets the requests in flight finish (their turns
included, up to ``shutdown_timeout`` seconds), stops the channels, then stops the bot (model calls
drained, queued transcript turns written, store closed). A second signal while that goes on exits the
process at once, with status 128 + the signal's number (an operator who does not want to wait).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from bot.server.app import build_app

if TYPE_CHECKING:
    from bot.app import BotApp
    from bot.channels.webhook import WebhookChannel
    from bot.config import ServerConfig

log = logging.getLogger(__name__)

#: How long requests in flight may take to finish once a stop is asked for (seconds).
SHUTDOWN_TIMEOUT = 30.0


async def run_server(bot: BotApp, channels: list[WebhookChannel], config: ServerConfig, *,
                     stop: asyncio.Event | None = None, on_listening: Callable[[list[str]], object] | None = None,
                     shutdown_timeout: float = SHUTDOWN_TIMEOUT, reuse_port: bool = False,
                     signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> None:
    """Start ``bot``, serve ``channels`` on ``config.host:config.port`` until ``stop`` is set (or one of
    ``signals`` arrives; a second one exits at once), then stop cleanly. ``on_listening`` receives the
    addresses listened on (``http://host:port``); ``reuse_port`` shares the port with the other workers."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[int] = []
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        if len(received) == 1:
            log.info("%s: stopping gracefully (send it again to exit at once)", signal.Signals(signum).name)
            stop.set()
            return
        log.warning("%s again: exiting now, without finishing the turns in flight", signal.Signals(signum).name)
        logging.shutdown()
        os._exit(128 + signum)

    for signum in signals:
        try:
            loop.add_signal_handler(signum, on_signal, signum)
            handled.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
            pass
    await bot.start()
    runner: web.AppRunner | None = None
    try:
        runner = web.AppRunner(build_app(bot, channels, config), handle_signals=False,
                               shutdown_timeout=shutdown_timeout, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, config.host, config.port, reuse_port=reuse_port or None).start()
        addresses = [f"http://{host}:{port}" for host, port, *_ in runner.addresses]
        log.info("serving on %s", ", ".join(addresses))
        if on_listening is not None:
            on_listening(addresses)
        await stop.wait()
        log.info("stopping: no new connections, finishing the requests in flight")
    finally:
        try:  # the signal handlers stay while stopping: a second signal exits at once
            if runner is not None:
                await runner.cleanup()
            await bot.stop()
        finally:
            for signum in handled:
                loop.remove_signal_handler(signum)


__all__ = ["SHUTDOWN_TIMEOUT", "run_server"]
