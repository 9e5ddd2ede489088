"""How long the retraining loop's two waits take on the demo bot: one warm-start ``csbot retrain``, and the time
from ``csbot models promote`` to the running server answering with the new version.

    python benchmarks/retraining_timing.py       # adds demo_retrain and promote_to_serving to active_learning.json

The demo model (``csbot prepare``'s, trained when missing) is registered and promoted in a fresh registry; then
``csbot retrain --epochs 3 --force`` runs as a user would (a subprocess, the wall time includes start-up),
which warm-starts from it, compares, registers and promotes. For the switch, ``csbot serve`` runs on a free
port with that registry and the candidate is promoted back and forth with ``csbot models promote`` (wall time
from the command's start until ``GET /version`` of the server names the new version, polled every 10 ms), three
ways: the server polling the registry (``registry.watch_seconds`` 2, the default), the same with the Redis
store (the promote command announces on Redis, the workers look at once), and two workers with Redis.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RESULTS, ROOT, checkout_env, machine, run_csbot
from benchmarks.serve import free_port, server

REPEATS = 4


def write_config(directory: Path, registry: Path, port: int, redis_url: str | None, workers: int) -> Path:
    import yaml

    from csbot.settings import load_config

    demo = load_config().paths
    config: dict[str, Any] = {
        "bot": {"model_dir": str(demo.model_dir), "index_dir": str(demo.index_dir)},
        "registry": {"path": str(registry), "watch_seconds": 2},
        "transcripts": {"path": str(directory / "transcripts.jsonl")},
        "server": {"port": port, "workers": workers, "rate_limit_per_minute": 0},
        "training": {"epochs": 3},
        "channels": {"rest": {}},
    }
    if redis_url:
        config["sessions"] = {"store": "redis", "url": redis_url, "namespace": f"timing{port}"}
    path = directory / f"config-{port}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def served_version(url: str) -> str:
    with urllib.request.urlopen(f"{url}/version", timeout=2) as response:
        return json.loads(response.read())["model"]


def switch_seconds(url: str, config: Path, version: str, log: Path) -> float:
    """Seconds from starting ``csbot models promote VERSION`` until the server names it."""
    with open(log, "a", encoding="utf-8") as out:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "bot.cli", "models", "promote", version, "--config",
                                    str(config)], stdout=out, stderr=subprocess.STDOUT, env=checkout_env(), cwd=ROOT)
        while served_version(url) != version:
            if time.perf_counter() - started > 120:
                raise SystemExit(f"the server did not switch to {version} within 120 s; see {log}")
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        process.wait(60)
    return round(elapsed, 3)


def start_redis(directory: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return process, f"redis://127.0.0.1:{port}/0"


def measure() -> dict[str, Any]:
    from csbot.registry import DirectoryRegistry
    from csbot.settings import load_config

    work = Path(tempfile.mkdtemp(prefix="csbot-timing-"))
    log = work / "run.log"
    try:
        run_csbot("prepare", log=log)  # the demo model and index, when missing
        registry = DirectoryRegistry(work / "registry")
        demo = load_config().paths
        first = registry.register("model", demo.model_dir)
        registry.promote("model", first.version, by="benchmark")
        config = write_config(work, registry.root, free_port(), None, 1)
        retrain = run_csbot("retrain", "--config", str(config), "--epochs", "3", "--force", "--no-progress", log=log)
        from training.data import load_dataset

        examples = len(load_dataset([str(p) for p in demo.nlu_data]))
        second = registry.current("model")
        redis, redis_url = start_redis(work)
        switches: dict[str, list[float]] = {}
        try:
            for name, url_redis, workers in (("polling", None, 1), ("redis", redis_url, 1), ("redis_2_workers", redis_url, 2)):
                port = free_port()
                config = write_config(work, registry.root, port, url_redis, workers)
                with server(config, port, work / f"serve-{name}.log") as url:
                    times = []
                    for n in range(REPEATS):
                        target = first.version if n % 2 == 0 else second.version
                        times.append(switch_seconds(url, config, target, log))
                        time.sleep(0.5)
                    switches[name] = times
        finally:
            redis.terminate()
        return {
            "demo_retrain": {"seconds": retrain, "command": f"csbot retrain --epochs 3 --force (warm start, demo bot, "
                             f"{examples} examples; includes start-up, the comparison report and registering)",
                             "examples": examples},
            "promote_to_serving": {name: {"median_seconds": statistics.median(t), "runs": t} for name, t in switches.items()},
            "timing_machine": machine(),
            "timing_measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    results = measure()
    out = RESULTS / "active_learning.json"
    existing = json.loads(out.read_text()) if out.is_file() else {}
    existing.update(results)
    if "strategies" in existing:  # the active-learning page shows these too
        from benchmarks.active_learning import write_results

        write_results(existing, out)
    else:
        out.write_text(json.dumps(existing, indent=2) + "\n")
    print(json.dumps({k: results[k] for k in ("demo_retrain", "promote_to_serving")}, indent=1))


if __name__ == "__main__":
    main()
