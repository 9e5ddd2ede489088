"""``csbot.home``: where the packaged configs are and where runtime files go (override > $CSBOT_HOME >
checkout > the per-user data folder)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO

from csbot import home
from csbot.home import HOME_ENV, configs_dir, default_config_path, runtime_home, source_checkout


@pytest.fixture(autouse=True)
def no_home_env(monkeypatch):
    monkeypatch.delenv(HOME_ENV, raising=False)


def test_configs_dir_holds_the_default_config_and_the_demo():
    folder = configs_dir()
    assert (folder / "__init__.py").is_file()
    assert default_config_path() == folder / "default.yaml" and default_config_path().is_file()
    assert (folder / "demo" / "domain.yml").is_file() and (folder / "demo" / "orders.json").is_file()


def test_the_tests_run_from_a_checkout():
    assert source_checkout() == REPO
    assert runtime_home() == REPO


def test_override_beats_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "from-env"))
    assert runtime_home(tmp_path / "flag") == (tmp_path / "flag").resolve()
    assert runtime_home(str(tmp_path / "flag")) == (tmp_path / "flag").resolve()


def test_environment_variable_beats_the_checkout(monkeypatch, tmp_path):
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "from-env"))
    assert runtime_home() == (tmp_path / "from-env").resolve()


def test_an_empty_environment_variable_is_not_a_home(monkeypatch):
    monkeypatch.setenv(HOME_ENV, "")
    assert runtime_home() == REPO


def test_home_expands_the_user_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert runtime_home("~/bots") == (tmp_path / "bots").resolve()
    monkeypatch.setenv(HOME_ENV, "~/env-bots")
    assert runtime_home() == (tmp_path / "env-bots").resolve()


def test_relative_home_is_made_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert runtime_home("here") == (tmp_path / "here").resolve()


def test_outside_a_checkout_the_user_data_folder(monkeypatch, tmp_path):
    import platformdirs

    monkeypatch.setattr(home, "source_checkout", lambda: None)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    expected = Path(platformdirs.user_data_dir("csbot", appauthor=False))
    assert runtime_home() == expected
    assert expected.is_relative_to(tmp_path)
    assert not runtime_home().is_relative_to(REPO)


def fake_tree(root: Path, *, checkout: bool) -> Path:
    """A ``configs`` package under ``root``, with the marks of a checkout beside it or not."""
    (root / "configs").mkdir(parents=True)
    if checkout:
        (root / "pyproject.toml").write_text("[project]\n", encoding="utf-8")
        (root / "bot" / "cli").mkdir(parents=True)
    return root / "configs"


def test_source_checkout_recognises_a_checkout(monkeypatch, tmp_path):
    configs = fake_tree(tmp_path / "project", checkout=True)
    monkeypatch.setattr(home, "configs_dir", lambda: configs)
    assert source_checkout() == tmp_path / "project"


@pytest.mark.parametrize("where", ["lib/python3.11/site-packages", "lib/python3/dist-packages", "plain"])
def test_installed_configs_are_not_a_checkout(monkeypatch, tmp_path, where):
    # an installed package never counts, even with stray files beside it; a folder without them neither
    configs = fake_tree(tmp_path / where, checkout=where != "plain")
    monkeypatch.setattr(home, "configs_dir", lambda: configs)
    assert source_checkout() is None
