"""The demo shop end to end: train its NLU model, build its index, and pass every conversation story.

This is what ``csbot chat`` runs with nothing configured; CI trains the model once (a few minutes on 2 cores).
"""

from __future__ import annotations

import pytest

from bot.cli import main
from conftest import REPO


@pytest.mark.slow
def test_the_demo_passes_its_stories(tmp_path_factory, capsys):
    root = tmp_path_factory.mktemp("demo")
    model, index = root / "model", root / "index"
    code = main(["test", "stories", str(REPO / "configs" / "demo" / "stories"), "--model", str(model),
                 "--index", str(index), "--quiet"])
    out = capsys.readouterr().out
    assert (model / "csbot-model.json").is_file() and (index / "csbot-index.json").is_file()
    assert code == 0, out
    passed, total = out.strip().splitlines()[-1].split()[0].split("/")
    assert passed == total and int(total) >= 25, out
