"""Helpers shared by the benchmark scripts: machine description, result files, the data sets."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CACHE = ROOT / "benchmarks" / "cache"


def datasets_dir() -> Path:
    """``../shared/datasets`` beside the repository, or ``$CSBOT_DATASETS``."""
    return Path(os.environ.get("CSBOT_DATASETS", ROOT.parent / "shared" / "datasets"))


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "hostname_kind": os.environ.get("CSBOT_MACHINE", "dev machine (python kind)"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        pass
    return info


def machine_line(results: dict[str, Any]) -> str:
    """The "Machine: ..." line of a results page: the machine, torch, the commit and when it was measured."""
    m = results.get("machine", {})
    return (f"Machine: {m.get('hostname_kind', '?')}, {m.get('cpu', '?')}, {m.get('cores', '?')} cores, torch "
            f"{m.get('torch', '?')}, commit {m.get('git_commit', '?')}; measured {results.get('measured_at')}.")


def checkout_env() -> dict[str, str]:
    """The environment for running this checkout's ``python -m bot.cli`` in a subprocess, offline."""
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
            "PYTHONPATH": os.pathsep.join(paths)}


def run_csbot(*args: str, log: Path) -> float:
    """Run this checkout's ``csbot`` with ``args``, its output appended to ``log``; its wall time in seconds. A
    failure stops the benchmark, naming the log."""
    import sys

    started = time.perf_counter()
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"\n$ csbot {' '.join(args)}\n")
        out.flush()
        done = subprocess.run([sys.executable, "-m", "bot.cli", *args], stdout=out, stderr=subprocess.STDOUT,
                              env=checkout_env(), cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"csbot {args[0]} failed ({done.returncode}); see {log}")
    return round(time.perf_counter() - started, 2)


def load_results(path: Path) -> dict[str, Any]:
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return {}


def save_results(path: Path, data: dict[str, Any]) -> None:
    """Atomic write, so an interrupted run never leaves a torn results file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
