"""``csbot serve --workers N``: N worker processes answering on one port, supervised by the parent.

How they start: the parent checks that ``host:port`` is free (a port in use is a :class:`ConfigError`; port
0 is resolved to a free port first), makes a fresh folder for the workers' metrics
(``PROMETHEUS_MULTIPROC_DIR``, see :mod:`bot.server.metrics`) and starts the workers with multiprocessing's
``spawn`` context: each is a fresh interpreter, so nothing heavy (torch, tokenizers, an event loop, a Redis
pool) is ever copied by a fork. Each worker loads the config, sets its torch threads so that the workers
together use the machine's cores and not N times them (:func:`torch_threads_for`), builds its own
:class:`~bot.app.BotApp` (models loaded per worker), and serves with ``SO_REUSEPORT``: the kernel spreads the
connections over the workers. The parent binds nothing while serving; the workers share Redis.

How they stop: SIGTERM or SIGINT to the parent is forwarded to every worker as SIGTERM; each stops
gracefully (no new connections, turns in flight and queued transcript writes finished, Redis closed). A
second signal to the parent is forwarded too, and a worker's second SIGTERM exits at once. Workers ignore
SIGINT of their own, so Ctrl+C in a terminal (which signals the whole process group) stops them once, through
the parent. A worker that dies on its own (a crash, the OOM killer, a failed start) is reported and the parent
stops the others and exits non-zero: restarting is left to the service manager (systemd, Kubernetes ...),
which sees the failure. The parent exits when every worker has stopped, and removes the metrics folder.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any

from bot.server.metrics import MULTIPROC_ENV
from csbot.errors import ConfigError, CsbotError

if TYPE_CHECKING:
    from bot.app import BotApp
    from bot.config import ServerConfig
    from csbot.settings import Config

log = logging.getLogger(__name__)

#: How long the parent waits for the workers after a second signal before killing them (seconds).
KILL_AFTER = 5.0


def build_bot(config: Config) -> BotApp:
    """The default worker bot: :meth:`BotApp.build` from the config (a module-level function, so picklable)."""
    from bot.app import BotApp

    return BotApp.build(config)


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def torch_threads_for(config: ServerConfig, workers: int, cores: int | None = None) -> int:
    """Torch threads per worker: ``server.torch_threads`` if set, else the cores shared out (at least 1)."""
    if config.torch_threads:
        return config.torch_threads
    return max(1, (cores or available_cores()) // max(1, workers))


def check_port(host: str, port: int) -> int:
    """``port`` if nothing listens on ``host:port`` (a free port when 0); a ConfigError naming it otherwise."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise ConfigError(f"server.host: cannot listen on {host!r}: {exc}") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # like the server: TIME_WAIT is no conflict
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(f"server.port: cannot listen on {host}:{port}: {exc.strerror or exc} (another server "
                              "there? choose another --port)") from exc
        return probe.getsockname()[1]


@dataclass(frozen=True)
class WorkerSpec:
    """What one worker needs to build its bot (sent to the spawned process, so picklable)."""

    index: int
    workers: int
    config_path: str | None
    overrides: dict[str, Any]
    factory: Callable[[Config], BotApp] = build_bot
    log_level: int = logging.WARNING


def worker_main(spec: WorkerSpec, events: Any) -> None:
    """A worker process: its config, torch threads and bot, served on the shared port until SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the parent, which forwards a SIGTERM
    logging.basicConfig(level=spec.log_level, format=f"%(levelname)s worker {spec.index} %(name)s: %(message)s")
    code = 0
    try:
        from bot.server.app import build_channels
        from bot.server.run import run_loop, run_server
        from csbot.settings import load_config

        config = load_config(spec.config_path, spec.overrides)
        threads = torch_threads_for(config.server, spec.workers)
        import torch

        torch.set_num_threads(threads)
        bot = spec.factory(config)
        channels = build_channels(config.channels)

        def listening(addresses: list[str]) -> None:
            log.info("worker %d (pid %d, %d torch threads) serving on %s", spec.index, os.getpid(), threads,
                     ", ".join(addresses))
            events.put(("listening", spec.index, addresses))

        run_loop(run_server(bot, channels, config.server, on_listening=listening, reuse_port=True,
                            signals=(signal.SIGTERM,)), config.server.event_loop)
    except CsbotError as exc:
        events.put(("error", spec.index, str(exc)))
        code = exc.exit_code
    except Exception as exc:  # reported to the parent as one line, the traceback in the log
        log.exception("worker %d failed", spec.index)
        events.put(("error", spec.index, f"unexpected {exc.__class__.__name__}: {exc}"))
        code = 1
    events.close()
    events.join_thread()
    raise SystemExit(code)


@dataclass
class _Supervisor:
    """The parent's bookkeeping: the workers, the signals received, the first failure."""

    processes: list[Any]
    metrics_dir: str
    say: Callable[[str], object]
    signals: list[int] = field(default_factory=list)
    failed: int = 0
    killed_at: float | None = None

    def on_signal(self, signum: int, frame: object) -> None:
        self.signals.append(signum)
        self.terminate()
        if len(self.signals) > 1 and self.killed_at is None:
            self.killed_at = time.monotonic() + KILL_AFTER

    def terminate(self) -> None:
        for process in self.processes:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)

    def reap(self, process: Any) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(process.pid, self.metrics_dir)
        code = process.exitcode
        if self.signals or self.failed:
            log.info("worker pid %s stopped (exit code %s)", process.pid, code)
            return
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        self.say(f"error: worker pid {process.pid} {how}; stopping the other workers")
        self.failed = code if code > 0 else 1
        self.terminate()


def run_workers(config: Config, workers: int, *, config_path: str | None = None,
                overrides: dict[str, Any] | None = None, factory: Callable[[Config], BotApp] = build_bot,
                on_listening: Callable[[list[str]], object] | None = None,
                say: Callable[[str], object] = print) -> int:
    """Serve with ``workers`` processes until SIGTERM or SIGINT; the exit code for the command.

    ``config`` is the loaded config (checked here); each worker loads ``config_path`` with ``overrides`` again
    itself, with the port resolved. ``factory`` builds a worker's bot from its config (module-level: it is
    pickled to the workers). 0 after a clean stop; a failed worker's exit code (1 when it was killed); 128 +
    the signal's number after a second signal.
    """
    if workers < 1:
        raise ConfigError(f"server.workers: at least 1, got {workers}")
    port = check_port(config.server.host, config.server.port)
    overrides = {**(overrides or {}), "server.port": port, "server.workers": workers}
    metrics_dir = tempfile.mkdtemp(prefix="csbot-metrics-")
    previous_env = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = metrics_dir  # inherited by the spawned workers
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    level = logging.getLogger().getEffectiveLevel()
    specs = [WorkerSpec(i + 1, workers, config_path, overrides, factory, level) for i in range(workers)]
    processes = [context.Process(target=worker_main, args=(spec, events), name=f"csbot-worker-{spec.index}")
                 for spec in specs]
    supervisor = _Supervisor(processes, metrics_dir, say)
    handlers = {signum: signal.signal(signum, supervisor.on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    listening: dict[int, list[str]] = {}
    try:
        for process in processes:
            process.start()
        alive = list(processes)
        while alive:
            wait([process.sentinel for process in alive], timeout=0.1)
            for process in [p for p in alive if not p.is_alive()]:
                process.join()
                alive.remove(process)
                supervisor.reap(process)
            _read_events(events, listening, supervisor, say)
            if len(listening) == workers and on_listening is not None:
                on_listening(sorted({address for addresses in listening.values() for address in addresses}))
                on_listening = None
            if supervisor.killed_at is not None and time.monotonic() > supervisor.killed_at:
                for process in alive:
                    process.kill()
        _read_events(events, listening, supervisor, say)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()
        events.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
        if previous_env is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous_env
    if len(supervisor.signals) > 1:
        return 128 + supervisor.signals[-1]
    return supervisor.failed


def _read_events(events: Any, listening: dict[int, list[str]], supervisor: _Supervisor,
                 say: Callable[[str], object]) -> None:
    """Take what the workers reported: listening addresses, start-up errors (reported once each)."""
    while True:
        try:
            kind, index, payload = events.get_nowait()
        except queue.Empty:
            return
        if kind == "listening":
            listening[index] = payload
        elif kind == "error":
            say(f"error: worker {index}: {payload}")


__all__ = ["KILL_AFTER", "WorkerSpec", "available_cores", "build_bot", "check_port", "run_workers",
           "torch_threads_for", "worker_main"]
