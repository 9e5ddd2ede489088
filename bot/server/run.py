"""Serving until told to stop: the bot started, the application on a TCP site, a clean stop on SIGINT/SIGTERM.

On a signal the server stops accepting connections, lets the requests in flight finish (their turns
included, up to ``shutdown_timeout`` seconds), stops the channels, then stops the bot (model calls
drained, queued transcript turns written, store closed). A second signal while that goes on exits the
process at once, with status 128 + the signal's number (an operator who does not want to wait).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from bot.server.app import build_app
from csbot.errors import ConfigError

if TYPE_CHECKING:
    from bot.app import BotApp
    from bot.channels.webhook import WebhookChannel
    from bot.config import ServerConfig

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long requests in flight may take to finish once a stop is asked for (seconds).
SHUTDOWN_TIMEOUT = 30.0


def run_loop(main: Coroutine[Any, Any, T], event_loop: str = "auto") -> T:
    """Run ``main`` to completion on a new event loop: uvloop's (about twice as fast per request) when
    ``event_loop`` is ``uvloop``, or ``auto`` and uvloop is installed; asyncio's own otherwise."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if event_loop != "asyncio":
        try:
            import uvloop
        except ImportError as exc:
            if event_loop == "uvloop":
                main.close()
                raise ConfigError("server.event_loop: uvloop is not installed (pip install uvloop; it does not "
                                  "run on Windows); set auto or asyncio") from exc
        else:
            factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


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
    # the models and the app are loaded for good: keep them out of every later garbage collection, whose
    # full passes would otherwise walk them all and pause every turn in flight
    gc.collect()
    gc.freeze()
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


__all__ = ["SHUTDOWN_TIMEOUT", "run_loop", "run_server"]
