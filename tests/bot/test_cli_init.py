"""``csbot init``: a new project's files, its config and domain load, its actions import from the project folder
without PYTHONPATH, a non-empty folder is refused, and (slow) its stories pass against a model trained on its data."""

from __future__ import annotations

import re
import sys

import pytest

from bot.cli import main

FILES = ["README.md", "actions.py", "config.yml", "data/nlu.yml", "data/qa.csv", "domain.yml", ".gitignore"]


def _forget_actions():
    for name in [n for n in sys.modules if n == "actions" or n.startswith("actions.")]:
        del sys.modules[name]


def test_init_creates_a_project_whose_config_domain_data_and_stories_load(tmp_path, capsys):
    from bot.domain import load_domain
    from bot.stories import load_stories
    from csbot.settings import load_config
    from training.data import load_dataset
    from training.qa_data import load_qa

    project = tmp_path / "my-bot"
    assert main(["init", str(project)]) == 0
    out = capsys.readouterr().out
    for name in FILES:
        assert (project / name).is_file(), name
        assert name in out
    assert list((project / "stories").glob("*.yml"))
    config = load_config(project / "config.yml")
    paths = config.paths
    assert paths.domain == project / "domain.yml" and paths.nlu_data == [project / "data" / "nlu.yml"]
    assert paths.model_dir.is_relative_to(project) and paths.transcripts.is_relative_to(project)
    assert config.transcripts.mask == ["email", "phone"]
    _forget_actions()
    domain = load_domain(paths.domain)
    intents = {e.intent for e in load_dataset([str(p) for p in paths.nlu_data])}
    assert intents == set(domain.intents)  # every intent has examples, every example's intent is in the domain
    assert len(load_qa([str(p) for p in paths.qa_data])) >= 5
    assert len(load_stories(paths.stories)) >= 5


def test_the_actions_module_is_imported_from_the_project_folder_without_pythonpath(tmp_path):
    import asyncio

    from bot.domain import load_domain
    from bot.domain.loader import import_callable

    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["init", str(first)]) == 0 and main(["init", str(second)]) == 0
    (second / "actions.py").write_text((second / "actions.py").read_text().replace('"on its way"', '"in the van"'))
    _forget_actions()
    assert str(first) not in sys.path and str(second) not in sys.path
    load_domain(first / "domain.yml")
    assert sys.modules["actions"].__file__ == str(first / "actions.py")
    action = import_callable("actions:order_status")  # how the dialogue manager resolves it later
    assert asyncio.run(action(slots={"order_id": "10234"}, session=None)) == {"status": "on its way"}
    load_domain(second / "domain.yml")  # a second project in the same process gets its own actions.py
    assert sys.modules["actions"].__file__ == str(second / "actions.py")
    assert asyncio.run(import_callable("actions:order_status")(slots={"order_id": "10234"}, session=None)) == {
        "status": "in the van"}
    _forget_actions()


def test_an_action_module_that_fails_to_import_is_a_domain_error_naming_the_key(tmp_path):
    from bot.domain import DomainError, load_domain

    project = tmp_path / "p"
    assert main(["init", str(project)]) == 0
    (project / "actions.py").write_text("raise RuntimeError('no back-end configured')\n")
    _forget_actions()
    with pytest.raises(DomainError, match=r"intents\.order_status\.action.*no back-end configured"):
        load_domain(project / "domain.yml")
    assert "actions" not in sys.modules


def test_a_folder_that_is_not_empty_is_refused_and_nothing_is_written(tmp_path, capsys):
    project = tmp_path / "busy"
    project.mkdir()
    (project / "notes.txt").write_text("mine")
    assert main(["init", str(project)]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "--force" in err
    assert sorted(p.name for p in project.iterdir()) == ["notes.txt"]
    assert main(["init", str(project), "--force"]) == 0
    assert (project / "config.yml").is_file() and (project / "notes.txt").read_text() == "mine"


def test_init_offers_the_rasa_conversion(capsys):
    assert main(["init", "--help"]) == 0
    assert "--from-rasa" in capsys.readouterr().out


@pytest.mark.slow
def test_a_new_project_passes_its_own_stories(tmp_path, capsys, monkeypatch):
    """Trains the project's model with the real default encoder (MiniLM, offline), as `csbot test stories` does."""
    project = tmp_path / "bot"
    assert main(["init", str(project)]) == 0
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    _forget_actions()
    capsys.readouterr()
    code = main(["test", "stories", "--config", str(project / "config.yml")])
    out = capsys.readouterr().out
    assert code == 0, out
    summary = re.search(r"(\d+)/(\d+) stories passed", out)
    assert summary is not None and summary[1] == summary[2] and int(summary[2]) >= 5, out
    assert "FAIL" not in out
    assert (project / "models" / "nlu" / "csbot-model.json").is_file()
    _forget_actions()


def test_init_from_rasa_converts_and_prints_the_summary(tmp_path, capsys):
    from conftest import REPO

    target = tmp_path / "converted"
    assert main(["init", "--from-rasa", str(REPO / "tests" / "fixtures" / "rasa_project"), str(target)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "| intents |" in out and "conversion-report.md" in out
    assert (target / "config.yml").is_file() and (target / "domain.yml").is_file()
    assert main(["init", "--from-rasa", str(REPO / "tests" / "fixtures" / "rasa_project"), str(target)]) == 2
