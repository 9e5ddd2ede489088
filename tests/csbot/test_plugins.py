"""The one resolver: every built-in name of every registry resolves, dotted paths work, and anything else is a
ConfigError naming the setting."""

from __future__ import annotations

import abc
import sys
import types

import pytest

from csbot import plugins
from csbot.errors import ConfigError
from csbot.plugins import ImportProblem, Registry, import_object

REGISTRIES = [value for value in vars(plugins).values() if isinstance(value, Registry)]


def test_every_pluggable_kind_has_a_registry():
    named = {name: value.setting for name, value in vars(plugins).items() if isinstance(value, Registry)}
    assert named == {
        "SESSION_STORES": "sessions.store", "TRANSCRIPT_SINKS": "transcripts.sinks", "POLICIES": "policy",
        "CHANNELS": "channels", "NLU_BACKENDS": "nlu.backend", "VECTOR_INDEXES": "retrieval.index_type",
        "IMPORTERS": "--format", "QA_SOURCES": "--format",
    }


@pytest.mark.parametrize("registry", REGISTRIES, ids=lambda r: r.setting)
def test_every_built_in_name_resolves_to_a_complete_subclass(registry):
    base = import_object(registry.base)
    assert registry.names()
    for name in registry.names():
        cls = registry.resolve(name)
        assert issubclass(cls, base) and not getattr(cls, "__abstractmethods__", None), name


@pytest.fixture
def module(monkeypatch):
    """A throwaway importable module ``plugin_fixture_mod`` with a complete and an incomplete backend."""

    class Base(abc.ABC):
        @abc.abstractmethod
        def run(self) -> None: ...

    class Complete(Base):
        def run(self) -> None:
            return None

    class Incomplete(Base):
        pass

    mod = types.ModuleType("plugin_fixture_mod")
    mod.Base, mod.Complete, mod.Incomplete, mod.not_a_class = Base, Complete, Incomplete, 42
    monkeypatch.setitem(sys.modules, "plugin_fixture_mod", mod)
    return mod


def test_a_name_or_a_dotted_path_either_spelling(module):
    registry = Registry("things.kind", "plugin_fixture_mod:Base", {"complete": "plugin_fixture_mod:Complete"})
    assert registry.resolve("complete") is module.Complete
    assert registry.resolve("plugin_fixture_mod:Complete") is module.Complete
    assert registry.resolve("plugin_fixture_mod.Complete") is module.Complete


@pytest.mark.parametrize(("name", "message"), [
    ("mystery", r"things.kind: unknown 'mystery'; known: complete, or a dotted path"),
    ("", r"things.kind: expected a name or a dotted path"),
    ("no_such_module_q:Thing", r"things.kind: cannot import 'no_such_module_q:Thing': ModuleNotFoundError"),
    ("plugin_fixture_mod:Missing", r"'plugin_fixture_mod' has no attribute 'Missing'"),
    ("plugin_fixture_mod:not_a_class", r"is not a subclass of"),
    ("plugin_fixture_mod:Incomplete", r"does not implement run"),
])
def test_anything_else_is_a_config_error_naming_the_setting(module, name, message):
    registry = Registry("things.kind", "plugin_fixture_mod:Base", {"complete": "plugin_fixture_mod:Complete"})
    with pytest.raises(ConfigError, match=message):
        registry.resolve(name)


def test_an_import_problem_keeps_the_reason_apart_from_the_setting():
    with pytest.raises(ImportProblem) as caught:
        import_object("no_such_module_q:f", "intents.x.action")
    assert caught.value.setting == "intents.x.action" and caught.value.reason.startswith("cannot import")
