"""Dependencies point one way (DESIGN.md, docs/architecture.md): the running bot never loads ``training``, the
shared core ``csbot`` imports nothing above it, and ``nlu``/``retrieval`` know nothing of ``bot``.

Each check runs in a fresh interpreter, so what earlier tests imported cannot hide an import.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest
from conftest import REPO

RUNNING_BOT = """
import sys
import bot.app, bot.channels.repl, bot.dialogue, bot.stories, bot.sessions, bot.transcripts, bot.config
import bot.sessions.redis, bot.transcripts.redis_stream, bot.transcripts.jsonl
loaded = sorted(name for name in sys.modules if name == "training" or name.startswith("training."))
assert not loaded, f"the running bot imported {loaded}"
"""


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_running_bot_does_not_import_training():
    done = _run(RUNNING_BOT)
    assert done.returncode == 0, done.stderr


def _imports(package: str) -> dict[str, set[str]]:
    """Top-level packages each module of ``package`` imports (module-level and in functions alike)."""
    found: dict[str, set[str]] = {}
    for path in (REPO / package).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(REPO))] = names
    return found


@pytest.mark.parametrize(("package", "forbidden", "allowed_in"), [
    ("csbot", {"bot", "nlu", "retrieval", "training"}, {"csbot/settings.py"}),
    ("nlu", {"bot", "retrieval", "training"}, set()),
    ("retrieval", {"bot", "nlu", "training"}, set()),
    ("training", {"bot"}, set()),
])
def test_packages_import_only_below_them(package, forbidden, allowed_in):
    wrong = {module: sorted(names & forbidden) for module, names in _imports(package).items()
             if names & forbidden and module not in allowed_in}
    assert not wrong, f"imports against the dependency direction: {wrong}"


#: Offline tools of ``bot`` that build training data as the CLI does (the running bot never imports them).
TOOLS_USING_TRAINING = {"bot/rasa/project.py"}


def test_only_the_cli_calls_training():
    wrong = {module: "training" for module, names in _imports("bot").items()
             if "training" in names and not module.startswith("bot/cli/") and module not in TOOLS_USING_TRAINING}
    assert not wrong, wrong
