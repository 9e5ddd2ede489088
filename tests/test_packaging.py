"""The built wheel works on its own: installed into a fresh virtual environment, away from the source tree,
it finds its default config and the demo shop inside site-packages and keeps runtime files in the user's
data folder (or ``$CSBOT_HOME``), never in site-packages. No training, no network.

The new virtual environment sees the current environment's packages, so torch and the rest are not
downloaded: a ``.pth`` file in its site-packages adds the current interpreter's site folders *after* its own
(``--system-site-packages`` would not do: run from inside a venv, it exposes the base interpreter's
packages, not the venv's). The current environment usually holds an editable install of csbot too;
setuptools' editable finder is *appended* to ``sys.meta_path``, after the path finder that searches the new
venv's own site-packages first, so the installed copy wins. The child script asserts it from ``__file__``.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
from conftest import REPO

PROBE = textwrap.dedent(
    """
    import asyncio, json, sys, sysconfig
    import bot, configs, csbot
    from bot.demo import actions
    from bot.domain import load_domain
    from bot.sessions.state import SessionState
    from csbot.settings import load_config

    config = load_config()
    paths = config.paths
    order = asyncio.run(actions.lookup_order({"order_id": "48213"}, SessionState(session_id="probe")))
    print(json.dumps({
        "site_packages": sysconfig.get_paths()["purelib"],
        "modules": {m.__name__: m.__file__ for m in (bot, configs, csbot, actions)},
        "home": str(config.home),
        "domain": str(paths.domain),
        "nlu_data": [str(p) for p in paths.nlu_data],
        "qa_data": [str(p) for p in paths.qa_data],
        "stories": str(paths.stories),
        "stories_files": sorted(p.name for p in paths.stories.glob("*.yml")),
        "model_dir": str(paths.model_dir),
        "index_dir": str(paths.index_dir),
        "transcripts": str(paths.transcripts),
        "intents": len(load_domain(paths.domain).intents),
        "orders_path": str(actions.orders_path()),
        "order_status": order.get("status"),
    }))
    """
)


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 300):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    """The wheel (built through an sdist, as from PyPI) installed into a fresh venv; its paths."""
    tmp = tmp_path_factory.mktemp("packaging")
    dist = tmp / "dist"
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(REPO)], cwd=tmp)
    (wheel,) = dist.glob("csbot-*.whl")
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp)
    python = venv / "bin" / "python"
    purelib = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                       cwd=tmp).stdout.strip())
    parents = [p for p in dict.fromkeys([*sys.path, *site.getsitepackages(), sysconfig.get_paths()["purelib"]])
               if Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()]
    (purelib / "_parent_environment.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in parents), encoding="utf-8")
    # pip comes from the base environment; it installs into the interpreter that runs it, the venv's.
    # --ignore-installed: the base environment's (editable) csbot of the same version must not count.
    run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "--quiet",
         str(wheel)], cwd=tmp)
    work = tmp / "elsewhere"
    work.mkdir()
    return {"tmp": tmp, "venv": venv, "python": python, "wheel": wheel, "work": work}


def clean_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The current environment without anything pointing at the source tree or a csbot home."""
    drop = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("CSBOT_")}
    env.update(HOME=str(tmp / "home"), XDG_DATA_HOME=str(tmp / "xdg-data"), HF_HUB_OFFLINE="1", **extra)
    return env


def probe(installed, **extra: str) -> dict:
    env = clean_env(installed["tmp"], **extra)
    result = run([str(installed["python"]), "-c", PROBE], cwd=installed["work"], env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def inside(path: str | Path, folder: str | Path) -> bool:
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def test_the_wheel_holds_the_default_config_and_the_demo(installed):
    import zipfile

    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    expected = {"configs/__init__.py", "configs/default.yaml", "configs/demo/domain.yml", "configs/demo/nlu.yml",
                "configs/demo/qa.csv", "configs/demo/orders.json", "bot/demo/actions.py"}
    assert expected <= names
    assert any(n.startswith("configs/demo/stories/") and n.endswith(".yml") for n in names)


def test_installed_copy_finds_config_and_demo_and_keeps_runtime_files_in_user_data(installed):
    found = probe(installed)
    site = found["site_packages"]
    assert inside(site, installed["venv"])
    for name, file in found["modules"].items():
        assert inside(file, site), f"{name} imported from {file}, not from the venv's site-packages"
        assert not inside(file, REPO), f"{name} imported from the source tree: {file}"
    for key in ("domain", "stories"):
        assert inside(found[key], site) and Path(found[key]).exists(), (key, found[key])
    for path in found["nlu_data"] + found["qa_data"]:
        assert inside(path, site) and Path(path).is_file(), path
    assert found["stories_files"], "no demo stories"
    assert found["intents"] > 0
    # the demo's actions read the packaged orders
    assert inside(found["orders_path"], site) and found["order_status"] == "on its way"
    # runtime files: the per-user data folder, not site-packages, not the checkout
    user_data = installed["tmp"] / ("xdg-data" if sys.platform.startswith("linux") else "home")
    for key in ("home", "model_dir", "index_dir", "transcripts"):
        assert inside(found[key], user_data), (key, found[key])
        assert not inside(found[key], site) and not inside(found[key], REPO), (key, found[key])
    if sys.platform.startswith("linux"):
        assert Path(found["home"]) == (user_data / "csbot").resolve()


def test_csbot_home_moves_runtime_files(installed):
    home = installed["tmp"] / "chosen-home"
    found = probe(installed, CSBOT_HOME=str(home))
    assert Path(found["home"]) == home.resolve()
    for key in ("model_dir", "index_dir", "transcripts"):
        assert inside(found[key], home), (key, found[key])
    assert inside(found["domain"], found["site_packages"])


def test_installed_command_runs(installed):
    env = clean_env(installed["tmp"])
    result = run([str(installed["venv"] / "bin" / "csbot"), "--help"], cwd=installed["work"], env=env)
    assert "chat" in result.stdout
