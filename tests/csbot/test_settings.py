"""The one configuration object: read once, typed, overrides, errors naming the file and the dotted key."""

from __future__ import annotations

import pytest

from bot.sessions.config import SessionsConfig
from bot.transcripts.config import TranscriptsConfig
from csbot.errors import ConfigError
from csbot.home import configs_dir
from csbot.settings import Config, load_config


@pytest.fixture(autouse=True)
def _no_env_url(monkeypatch):
    monkeypatch.delenv("CSBOT_REDIS_URL", raising=False)


def test_the_default_file_matches_the_built_in_defaults(tmp_path):
    config = load_config()
    assert config.source == configs_dir() / "default.yaml"
    defaults = Config()
    # default.yaml only makes the defaults visible (its demo paths are relative to its own folder)
    assert config.model_dump(exclude={"bot"}) == defaults.model_dump(exclude={"bot"})
    assert config.paths == defaults.paths and config.bot.name == defaults.bot.name
    assert config.sessions == SessionsConfig() and config.transcripts == TranscriptsConfig()
    paths = load_config(home=tmp_path).paths
    assert paths.domain == configs_dir() / "demo" / "domain.yml" and paths.domain.is_file()
    assert all(p.is_file() for p in paths.nlu_data + paths.qa_data) and paths.stories.is_dir()
    assert paths.model_dir == tmp_path / "models" / "demo"  # runtime files go under the home
    assert paths.transcripts == tmp_path / "logs" / "transcripts.jsonl"


def test_a_user_file_overrides_and_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "bot.yaml"
    path.write_text("sessions:\n  store: redis\n  url: redis://file:6379/1\n  ttl_seconds: 60\n"
                    "bot:\n  domain: mine/domain.yml\n  model_dir: models/m\ntranscripts:\n  path: ~/t.jsonl\n")
    config = load_config(path)
    assert (config.sessions.store, config.sessions.url, config.sessions.ttl_seconds) == ("redis", "redis://file:6379/1", 60)
    assert config.training.epochs == 10  # sections the file leaves out keep their defaults
    assert config.paths.domain == tmp_path / "mine" / "domain.yml"  # relative to the file's folder
    assert config.paths.model_dir == tmp_path / "models" / "m"
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert config.paths.transcripts == tmp_path / "h" / "t.jsonl"
    assert config.paths.nlu_data == [configs_dir() / "demo" / "nlu.yml"]  # unset: the packaged demo
    monkeypatch.setenv("CSBOT_REDIS_URL", "redis://env:6379/2")
    assert load_config(path).sessions.url == "redis://env:6379/2"  # the environment beats the file
    flagged = load_config(path, {"sessions.url": "redis://flag:1/0", "sessions.namespace": None})
    assert flagged.sessions.url == "redis://flag:1/0" and flagged.sessions.namespace == "csbot"  # flags beat both


@pytest.mark.parametrize(("text", "message"), [
    ("sessions:\n  stroe: redis\n", "sessions.stroe: unknown key; did you mean store?"),
    ("sessions:\n  ttl_seconds: 0\n", "sessions.ttl_seconds: must be > 0"),
    ("training:\n  epochs: many\n", "training.epochs: must be an integer"),
    ("nlu:\n  backend: tensorflow\n", "nlu.backend: must be one of"),
    ("retrieval:\n  hnsw:\n    m: 1\n", "retrieval.hnsw.m: must be >= 4"),
    ("sesions:\n  store: redis\n", "sesions: unknown section; did you mean sessions?"),
    ("colours:\n  primary: red\n", "colours: unknown section"),
    ("sessions: redis\n", "sessions: must be a mapping"),
    ("sessions:\n  store: memory\n  store: redis\n", "duplicate key 'store'"),
    ("- a list\n", "a mapping of sections"),
    ("bot: {domain: [unclosed\n", "invalid YAML"),
])
def test_a_bad_file_names_the_file_and_the_dotted_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in str(caught.value) and message in str(caught.value)


def test_a_bad_flag_is_named_as_an_option(tmp_path):
    with pytest.raises(ConfigError, match=r"option: sessions.ttl_seconds: must be > 0"):
        load_config(None, {"sessions.ttl_seconds": 0})
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_an_empty_file_is_all_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n")
    assert load_config(path).model_dump() == Config().model_dump()


# -- hardening (issue 12): one strict reader, errors naming the file, never an unexpected exception ----------


@pytest.mark.parametrize(("text", "message"), [
    ("training:\n  epochs: 1" + "0" * 5000 + "\n", ":2: invalid YAML: cannot read the value"),
    ("training: " + "[" * 100_000 + "]" * 100_000 + "\n", ":1: invalid YAML: nested more than 100 levels deep"),
    ("training:\n  seed: 2001-02-30\n", ":2: invalid YAML: cannot read the value '2001-02-30'"),
    ("bot:\n  name: \"\\ud800\"\n", "invalid YAML: a lone surrogate"),
    ("bot: &a [*a]\n", "invalid YAML: a value contains itself"),
    ("1: {}\n", "a section name must be a string"),
    ("retrieval:\n  hnsw:\n    mm: 8\n", "retrieval.hnsw.mm: unknown key; did you mean m?"),
])
def test_hostile_config_is_a_config_error_naming_the_file(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(str(path)) and message in str(caught.value)


def test_a_config_file_that_is_not_utf8_names_the_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_bytes("bot:\n  name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not valid UTF-8") as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}:2: ")
    path.write_bytes(b"\xef\xbb\xbfbot:\n  name: caf\xc3\xa9\n")  # UTF-8 with a byte-order mark is fine
    assert load_config(path).bot.name == "café"


def test_a_merged_key_may_be_overridden_but_not_repeated(tmp_path):
    path = tmp_path / "bot.yaml"
    path.write_text("training:\n  <<: {epochs: 3, seed: 1}\n  epochs: 4\n", encoding="utf-8")
    config = load_config(path)
    assert (config.training.epochs, config.training.seed) == (4, 1)
    path.write_text("training:\n  <<: {epochs: 3}\n  epochs: 4\n  epochs: 5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r":4: invalid YAML: duplicate key 'epochs' \(first given on line 3\)"):
        load_config(path)
