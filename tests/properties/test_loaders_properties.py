"""Property tests: the config, domain and story loaders against generated hostile files.

The contract, for any bytes at all: a loaded object, or a :class:`~csbot.errors.CsbotError` whose message
names the file; never another exception, never a hang, and the file left as it was. A domain that loads
renders every one of its texts: a template field that cannot render (``{intent!x}``, ``{slot:%Q}``,
``{a[0]}``) is refused when the domain is loaded, not when a customer is answered.

Files are random bytes, random YAML-ish text, or the packaged files (``configs/default.yaml``, the demo
domain, a demo story file) with hostile values put in at a drawn place (format strings, lone surrogates,
U+2028, control characters, huge numbers, deep nesting, long texts), a section misspelt or repeated, or a
hostile fragment spliced into the text. The budget is the ``csbot`` Hypothesis profile of ``tests/conftest.py``.
"""

from __future__ import annotations

import copy
import hashlib
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from budget import within
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from bot.domain import load_domain
from bot.domain.loader import BUILTIN_VARIABLES
from bot.stories import load_stories
from csbot.errors import CsbotError
from csbot.home import configs_dir
from csbot.settings import Config, load_config

HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]

DEFAULT_CONFIG = (configs_dir() / "default.yaml").read_text(encoding="utf-8")
DEMO_DOMAIN = yaml.safe_load((configs_dir() / "demo" / "domain.yml").read_text(encoding="utf-8"))
STORY_FILE = sorted((configs_dir() / "demo" / "stories").glob("*.yml"))[0]
DEMO_STORIES = yaml.safe_load(STORY_FILE.read_text(encoding="utf-8"))




def honours_the_contract(load: Callable[[Path], Any], path: Path) -> Any:
    """``load(path)``, or None after a CsbotError naming ``path``; the file unchanged either way."""
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        with within():
            result = load(path)
    except CsbotError as exc:
        assert str(path) in str(exc), f"{type(exc).__name__} does not name {path}: {exc}"
        event(f"refused: {type(exc).__name__}")
        result = None
    else:
        event("loaded")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before, "loading changed the file"
    return result


# --- hostile values and texts ----------------------------------------------------------------------

SPECIAL = ["\u2028", "\u2029", "\x85", "\x00", "\x07", "\x1b[31m", "\t", "\r", "\ufeff", "\ud800", "\udfff", "é",
           "😊", "\u202e", "%s", "%(x)s", "\\", '"', "'", "#", ": ", "- ", "&a", "*a", "!!", "{{", "}}"]
FRAGMENTS = ["1" + "0" * 5000, "[" * 3000, "[" * 150 + "]" * 150, "{" * 120, "&a [*a]", "*nowhere", "\x00",
             "\u2028", "\ufeff", "\t", "\r", '"\\ud800"', "!!python/object/apply:os.system [ls]", "!!binary ===",
             "2001-02-30", "? [a]\n: b", "<<: 1", "key: 1\nkey: 2\n", ": :", "- - -", "---\n", "...\n", "|\n x"]

any_char_text = st.text(st.characters(exclude_categories=()), max_size=20)
hostile_text = st.lists(st.one_of(any_char_text, st.sampled_from(SPECIAL),
                                  st.sampled_from([4000, 300]).map(lambda n: "long " * n)), max_size=4).map("".join)
huge_int = st.integers(min_value=4290, max_value=4310).map(lambda n: 10 ** n)
leaf = st.one_of(st.none(), st.booleans(), st.integers(), huge_int, st.floats(allow_nan=True, allow_infinity=True),
                 hostile_text)
yaml_value = st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(hostile_text, inner, max_size=3)),
                          max_leaves=8)

SLOTS = sorted(DEMO_DOMAIN["slots"])
PROVIDED = sorted({v for spec in DEMO_DOMAIN["intents"].values() for v in (spec or {}).get("provides", [])})
FIELD_NAMES = [*SLOTS, *PROVIDED, *sorted(BUILTIN_VARIABLES), "", "0", "1", "nobody", "order_id.real",
               "order_id[0]", "status.__class__", "slot.__init__.__globals__", "intent[__import__]"]
CONVERSIONS = ["", "", "!r", "!s", "!a", "!x", "!", "!rr", "!R"]
#: Slot patterns that do not compile, or would crash the compiler (nesting, repeat counts).
REGEXES = ["(" * 1200 + ")" * 1200, "a{4294967296}", "[", "(?P<a>x)(?P<a>y)", "\\", "*", "(?<=a+)b", "\ud800"]
SPECS = ["", "", ":", ":>10", ":^20", ":<3", ":.2f", ":d", ":,", ":%Q", ":%Y", ":x<5", ":>99999999", ":.9999",
         ":{status}", ":{}", ":}", ":{", ":!r", ":=^+#015,.3f", ":Z", ":>" + "9" * 5000]


@st.composite
def format_string(draw: st.DrawFn) -> str:
    """A template text mixing literal text, braces and replacement fields with odd conversions and specs."""
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["text", "field", "field", "brace"]))
        if kind == "text":
            parts.append(draw(st.one_of(st.text(max_size=10), st.sampled_from(SPECIAL))))
        elif kind == "brace":
            parts.append(draw(st.sampled_from(["{", "}", "{{", "}}", "{}", "{ }", "{order_id", "order_id}"])))
        else:
            parts.append("{" + draw(st.sampled_from(FIELD_NAMES)) + draw(st.sampled_from(CONVERSIONS))
                         + draw(st.sampled_from(SPECS)) + "}")
    return "".join(parts)


@st.composite
def spliced(draw: st.DrawFn, text: str) -> str:
    at = draw(st.integers(min_value=0, max_value=len(text)))
    return text[:at] + draw(st.sampled_from(FRAGMENTS)) + text[at:]


def paths_in(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path of a nested dict/list (the places a value can be replaced)."""
    found = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            found.extend(paths_in(value, (*prefix, key)))
    elif isinstance(tree, list):
        for position, value in enumerate(tree):
            found.extend(paths_in(value, (*prefix, position)))
    return found


def replaced(tree: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    tree = copy.deepcopy(tree)
    node = tree
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return tree


HUGE_MARK = "HUGE_INTEGER_HERE"


def _printable(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**4000:
        return HUGE_MARK  # PyYAML cannot write an int past Python's str() limit: spliced in as digits
    if isinstance(value, list):
        return [_printable(v) for v in value]
    if isinstance(value, dict):
        return {k: _printable(v) for k, v in value.items()}
    return value


def dump(tree: Any) -> str:
    text = yaml.safe_dump(_printable(tree), allow_unicode=True, sort_keys=False)
    return text.replace(HUGE_MARK, "1" + "0" * 4400)


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate becomes bytes that are not UTF-8


@st.composite
def mutated_yaml(draw: st.DrawFn, base: Any, base_text: str, values: st.SearchStrategy) -> bytes:
    """The base document with one value replaced, a key misspelt or repeated, or a fragment spliced in."""
    how = draw(st.sampled_from(["value", "value", "value", "misspell", "repeat", "splice", "bytes", "text"]))
    if how == "value":
        path = draw(st.sampled_from(paths_in(base)))
        return encode(dump(replaced(base, path, draw(values))))
    if how == "misspell" and isinstance(base, dict) and base:
        key = draw(st.sampled_from(sorted(base)))
        tree = {(key[:-1] if k == key else k): v for k, v in base.items()}
        return encode(dump(tree))
    if how == "repeat" and isinstance(base, dict) and base:
        key = draw(st.sampled_from(sorted(base)))
        return encode(dump(base) + dump({key: base[key]}))
    if how == "splice":
        return encode(draw(spliced(base_text)))
    if how == "text":
        return encode(draw(hostile_text))
    return draw(st.binary(max_size=300))


def fresh(tmp_path_factory: pytest.TempPathFactory, name: str, content: bytes) -> Path:
    path = tmp_path_factory.mktemp("hostile") / name
    path.write_bytes(content)
    return path


# --- the properties ------------------------------------------------------------------------------------


@settings(suppress_health_check=HEALTH)
@given(content=mutated_yaml(yaml.safe_load(DEFAULT_CONFIG), DEFAULT_CONFIG, yaml_value))
@example(content=b"sesions:\n  store: redis\n")
@example(content=b"training:\n  epochs: 1" + b"0" * 5000 + b"\n")
def test_the_config_loader_loads_hostile_files_or_names_them(tmp_path_factory, content):
    path = fresh(tmp_path_factory, "config.yaml", content)
    config = honours_the_contract(load_config, path)
    assert config is None or isinstance(config, Config)


def fields_of(text: str) -> list[tuple[str, str | None, str]]:
    return [(f, c, s or "") for _, f, s, c in string.Formatter().parse(text) if f is not None]


def assert_renders(text: str) -> None:
    """A loaded domain's text renders with text values, as the dialogue fills slots and built-in variables."""
    fields = fields_of(text)
    if any(name in PROVIDED and spec for name, _, spec in fields):
        return  # an action's variable with a format spec may be a number: the action decides
    string.Formatter().vformat(text, (), {name: "value" for name, _, _ in fields})


def domain_texts(domain) -> list[str]:
    texts = [slot.prompt for slot in domain.slots.values()] + [slot.invalid or "" for slot in domain.slots.values()]
    for variants in domain.templates.values():
        for variant in variants:
            texts.append(variant.text)
            texts.extend(part for button in variant.buttons for part in (button.title, button.payload or ""))
    return texts


def template_places(domain: dict) -> list[tuple]:
    places = [("slots", name, "prompt") for name in domain["slots"]]
    places += [("slots", name, "invalid") for name in domain["slots"]]
    for name, variants in domain["templates"].items():
        for number, variant in enumerate(variants):
            places.append(("templates", name, number, "text"))
            places += [("templates", name, number, "buttons", b, "title") for b in range(len(variant.get("buttons", [])))]
    return places


@st.composite
def hostile_domain(draw: st.DrawFn) -> bytes:
    how = draw(st.sampled_from(["template", "template", "regex", "mutation", "mutation"]))
    if how == "template":  # a text with odd fields: the loader must refuse what cannot render
        place = draw(st.sampled_from(template_places(DEMO_DOMAIN)))
        return encode(dump(replaced(DEMO_DOMAIN, place, draw(format_string()))))
    if how == "regex":
        slot = draw(st.sampled_from(SLOTS))
        return encode(dump(replaced(DEMO_DOMAIN, ("slots", slot, "regex"), draw(st.sampled_from(REGEXES)))))
    text = (configs_dir() / "demo" / "domain.yml").read_text(encoding="utf-8")
    return draw(mutated_yaml(DEMO_DOMAIN, text, st.one_of(yaml_value, format_string())))


@settings(suppress_health_check=HEALTH)
@given(content=hostile_domain())
@example(content=encode(dump(replaced(DEMO_DOMAIN, ("templates", "track_order", 0, "text"), "{intent!x}"))))
@example(content=encode(dump(replaced(DEMO_DOMAIN, ("templates", "track_order", 0, "text"), "{order_id:%Q}"))))
@example(content=encode(dump(replaced(DEMO_DOMAIN, ("slots", "email", "prompt"), "{order_id[0]}"))))
def test_the_domain_loader_loads_hostile_files_or_names_them_and_loaded_texts_render(tmp_path_factory, content):
    path = fresh(tmp_path_factory, "domain.yml", content)
    domain = honours_the_contract(load_domain, path)
    if domain is not None:
        for text in domain_texts(domain):
            assert_renders(text)


@settings(suppress_health_check=HEALTH)
@given(content=mutated_yaml(DEMO_STORIES, STORY_FILE.read_text(encoding="utf-8"), yaml_value))
def test_the_story_loader_loads_hostile_files_or_names_them(tmp_path_factory, content):
    path = fresh(tmp_path_factory, "stories.yml", content)
    stories = honours_the_contract(load_stories, path)
    assert stories is None or (stories and all(story.steps is not None for story in stories))
