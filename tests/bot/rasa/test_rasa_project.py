"""A Rasa 3 project imported whole (tests/fixtures/rasa_project, written for csbot in Rasa's documented format):
the converted files, the report, errors on bad Rasa files, and the converted bot passing its converted stories."""

from __future__ import annotations

import asyncio
import json

import pytest
import yaml
from conftest import REPO

from bot.rasa import convert_project
from csbot.errors import DataError

FIXTURE = REPO / "tests" / "fixtures" / "rasa_project"


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("converted") / "bot"
    return convert_project(FIXTURE, out), out


def test_the_project_is_written_whole(converted):
    report, out = converted
    for name in ("config.yml", "domain.yml", "data/nlu.jsonl", "data/out_of_scope.jsonl", "data/qa.jsonl",
                 "data/patterns.yml", "stories/test_stories.yml", "stories/rules.yml", "conversion-report.md"):
        assert (out / name).is_file(), name
        assert name in report.files
    whole = yaml.safe_load((out / "config.yml").read_text())
    config = whole["bot"]
    assert config["nlu_data"] == ["data/nlu.jsonl", "data/out_of_scope.jsonl"]
    assert config["qa_data"] == ["data/qa.jsonl"] and whole["nlu"]["entity_patterns"] == ["data/patterns.yml"]
    assert config["model_dir"] == "models/nlu" and config["name"] == "harbour-bank-helper"


def test_nlu_out_of_scope_and_qa(converted):
    report, out = converted
    examples = [json.loads(line) for line in (out / "data/nlu.jsonl").read_text().splitlines()]
    intents = {e["intent"] for e in examples}
    assert "faq" in intents and not any("/" in i for i in intents)
    assert not intents & {"out_of_scope", "nlu_fallback"}
    oos = [json.loads(line) for line in (out / "data/out_of_scope.jsonl").read_text().splitlines()]
    assert {e["intent"] for e in oos} == {"out_of_scope"} and len(oos) == 9  # out_of_scope/cooking included
    records = [json.loads(line) for line in (out / "data/qa.jsonl").read_text().splitlines()]
    fees = [r for r in records if r["tags"] == ["faq/ask_fees"]]
    assert len(fees) == 4 and all(r["intent"] == "faq" for r in fees)
    assert fees[0]["answer"].startswith("Transfers inside the country are free")  # the real answer, not the intent
    again = convert_project(FIXTURE, out.parent / "again")
    assert (out.parent / "again/data/qa.jsonl").read_text() == (out / "data/qa.jsonl").read_text()  # stable ids
    assert report.qa_records == again.qa_records == 16 and report.out_of_scope_examples == 9


def test_patterns_file_has_regexes_lookups_and_synonyms(converted):
    _, out = converted
    patterns = yaml.safe_load((out / "data/patterns.yml").read_text())
    assert patterns["entities"]["amount"]["regex"] == [r"\b\d+(?:\.\d{2})?\b"]
    assert patterns["entities"]["account_type"]["lookup"] == ["savings", "checking", "current account"]
    assert patterns["synonyms"]["savings"] == ["saver", "savings account"]  # value mapping, then synonym item
    assert patterns["synonyms"]["checking"] == ["current account"] and patterns["synonyms"]["credit"] == ["cc"]


def test_the_report_names_what_did_not_map(converted):
    report, out = converted
    text = (out / "conversion-report.md").read_text()
    assert text == report.to_markdown()
    for expected in ("action_block_card", "session_config", "validate_transfer_form", "pipeline", "checkpoints",
                     "leaving a form", "conditional or channel-specific", "ignored_intents"):
        assert expected in text, expected
    assert report.stories_left_out >= 3 and report.stories >= 15


def test_the_converted_domain_and_stories_load(converted):
    from bot.domain import load_domain
    from bot.stories import load_stories

    _, out = converted
    domain = load_domain(out / "domain.yml")
    assert domain.intents["transfer_money"].required_slots == ["amount", "recipient"]
    assert domain.intents["faq"].retrieve and domain.intents["human_handoff"].handoff
    assert "deny" not in domain.templates  # a deny during a form is not deny's answer
    assert len(load_stories(out / "stories")) >= 15


def test_a_bad_rasa_file_names_file_and_line(tmp_path):
    import shutil

    project = tmp_path / "p"
    shutil.copytree(FIXTURE, project)
    (project / "data" / "rules.yml").write_text("rules:\n- rule: x\n  steps:\n  - intent: [\n")
    with pytest.raises(DataError) as info:
        convert_project(project, tmp_path / "out")
    assert info.value.path == project / "data" / "rules.yml" and info.value.line is not None
    (project / "data" / "rules.yml").write_text("version: '3.1'\nrules: {a: 1}\n")
    with pytest.raises(DataError) as info:
        convert_project(project, tmp_path / "out")
    assert info.value.line == 2 and "rules" in info.value.reason


@pytest.mark.slow
def test_the_converted_bot_passes_its_converted_stories(converted, tmp_path):
    """Train the converted bot (the real default encoder, a short schedule), build its index, and play every
    converted story with csbot's story runner."""
    from bot.app import BotApp
    from bot.stories import load_stories, run_story
    from csbot.settings import load_config
    from training.prepare import prepare_models

    _, out = converted
    config_path = out / "config.yml"
    config = load_config(config_path, {"bot.model_dir": str(tmp_path / "model"),
                                       "bot.index_dir": str(tmp_path / "index"),
                                       "training.min_steps": 300, "training.epochs": 8})
    prepare_models(config, show_progress=False, say=lambda _: None)
    stories = load_stories(out / "stories")
    app = BotApp.build(config, transcripts=False)

    async def run_all():
        async with app:
            return [await run_story(app, story) for story in stories]

    results = asyncio.run(run_all())
    failures = [(r.name, f.step, f.said, f.problems, f.reply) for r in results for f in r.failures]
    assert not failures, "\n".join(map(str, failures))
