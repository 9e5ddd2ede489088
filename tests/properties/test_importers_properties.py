"""Property tests: every NLU data importer and Q&A source against generated hostile files.

The contract, for any bytes at all: reading gives a result, or a :class:`~csbot.errors.CsbotError` whose
message names the file; never another exception, never a hang, and the file read is left as it was.
Anything ``csbot data convert`` accepts, it writes so that it reads back the same, and a failing convert
leaves an existing ``--out`` untouched.

The files are generated three ways, each per format: random bytes; a document of the format's shape whose
values are hostile (lone surrogates, U+2028 and other line breaks, control characters, format strings,
huge numbers, long texts, deep nesting, duplicate keys); and such a document with a hostile fragment
spliced into its text. The budget is the ``csbot`` Hypothesis profile of ``tests/conftest.py``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from budget import within
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from bot.cli import main
from csbot.errors import CsbotError
from retrieval.sources import load_records
from training.data import write_jsonl
from training.importers import load_examples
from training.qa_data import load_qa

#: The longest one read may take before it counts as a hang (generous: two shared cores, hostile sizes).




def digest(path: Path) -> dict[str, str]:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def honours_the_contract(read: Callable[[], Any], path: Path) -> Any:
    """``read()``'s result, or None after a CsbotError naming ``path``; the file(s) at ``path`` unchanged."""
    before = digest(path)
    try:
        with within():
            result = read()
    except CsbotError as exc:
        assert str(path) in str(exc), f"{type(exc).__name__} does not name {path}: {exc}"
        event(f"refused: {type(exc).__name__}")  # --hypothesis-show-statistics tells how often each happens
        result = None
    else:
        event("read")
    assert digest(path) == before, "reading changed the file"
    return result


# --- hostile values --------------------------------------------------------------------------------

SPECIAL = [
    "\u2028", "\u2029", "\x85", "\x00", "\x0b", "\x0c", "\x1c", "\x1e", "\r", "\n", "\r\n", "\t", "\ufeff",
    "\ud800", "\udfff", "\ud83d", "\u202e", "\u0301", "é", "😊", "{", "}", "{}", "{0}", "{intent!x}",
    "{slot:%Q}", "{a[0]}", "{a.__class__}", "%s", "%(x)s", "\\", '"', "'", "#", "a#b", ":", "- ", "[", "]",
    "(", ")", "[x](city)", "&a", "*a", "!!python/object:os.system", "<<", "---", "...", ",", ";", "NaN",
]
#: JSON or YAML text spliced into a document: what a hand edit, a bad export or an attacker puts there.
FRAGMENTS = [
    "1" + "0" * 5000, "-" + "9" * 4400, "1e999999", "NaN", "Infinity", "[" * 2000, "]" * 50,
    "[" * 3000 + "]" * 3000, "{" * 200, '"\\ud800"', '"\\udfff\\ud800"', '"dup": 1, "dup": 2, ', "\u2028",
    "\u2029", "\x85", "\x00", "\ufeff", "\r", "\r\n", "\n\n", ",", ":", '"', "\\", "&a [*a]", "*undefined",
    "!!binary ???", "2001-02-30", "? [a, b]\n: c", "<<: 5", "\t", "{{intent!x}}", "{0:{1}}",
]

any_char_text = st.text(st.characters(exclude_categories=()), max_size=20)  # lone surrogates included
hostile_text = st.lists(
    st.one_of(any_char_text, st.sampled_from(SPECIAL), st.sampled_from([15_000, 2000]).map(lambda n: "word " * n)),
    max_size=4,
).map("".join)
#: Text a real file may hold: any character but a lone surrogate (control characters, U+2028, braces...).
fair_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20)
plain_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
                     min_size=1, max_size=12)
huge_int = st.integers(min_value=4290, max_value=4310).map(lambda n: 10 ** n)  # around the conversion limit
leaf = st.one_of(st.none(), st.booleans(), st.integers(), huge_int, st.floats(allow_nan=True, allow_infinity=True),
                 fair_text, hostile_text)
json_value = st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(fair_text, inner, max_size=3)),
                          max_leaves=8)


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


deep = st.sampled_from([99, 101, 700]).map(nested)


def dumps_json(value: Any, ascii_only: bool, indent: int | None) -> str:
    try:
        return json.dumps(value, ensure_ascii=ascii_only, indent=indent, allow_nan=True)
    except ValueError:  # an int past Python's str() limit: write a long one out by hand
        return json.dumps(_printable(value), ensure_ascii=ascii_only, indent=indent, allow_nan=True).replace(
            "4000.5", "1" + "0" * 5000)


def _printable(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**4000:
        return 4000.5
    if isinstance(value, list):
        return [_printable(v) for v in value]
    if isinstance(value, dict):
        return {k: _printable(v) for k, v in value.items()}
    return value


@st.composite
def spliced(draw: st.DrawFn, text: str) -> str:
    """``text`` with a hostile fragment inserted, a key repeated, or cut short, at a drawn position."""
    how = draw(st.sampled_from(["fragment", "fragment", "duplicate", "truncate"]))
    if how == "fragment":
        at = draw(st.integers(min_value=0, max_value=len(text)))
        return text[:at] + draw(st.sampled_from(FRAGMENTS)) + text[at:]
    if how == "duplicate":  # repeat the first `"key": value` of the text right after itself
        start = text.find('"')
        end = text.find(":", start)
        close = max(text.find(",", end), 0) or text.find("}", end)
        if 0 <= start < end < close:
            return text[:close] + ", " + text[start:close] + text[close:]
        return text
    return text[: draw(st.integers(min_value=0, max_value=len(text)))]


def to_bytes(text: str, bom: bool) -> bytes:
    raw = text.encode("utf-8", "surrogatepass")  # a lone surrogate becomes bytes that are not UTF-8
    return (b"\xef\xbb\xbf" if bom else b"") + raw


# --- documents of each format, fair (what a real file may hold) or hostile -----------------------------


@st.composite
def fair_example(draw: st.DrawFn) -> tuple[str, str, list[tuple[int, int, str]]]:
    """A text, an intent (sometimes several, 'a#b') and at most one entity whose span fits the text."""
    text = draw(fair_text.filter(str.strip))
    intent = draw(st.one_of(plain_text, st.tuples(plain_text, plain_text).map("#".join)))
    entities = []
    if draw(st.booleans()):
        start = draw(st.integers(0, len(text) - 1))
        entities.append((start, draw(st.integers(start + 1, len(text))), draw(plain_text)))
    return text, intent, entities



class Shapes:
    """The strategies of every format's documents; ``hostile`` puts any JSON value where a field goes."""

    def __init__(self, hostile: bool) -> None:
        self.hostile = hostile
        self.text = st.one_of(fair_text, hostile_text) if hostile else fair_text
        self.name = st.one_of(plain_text, hostile_text) if hostile else plain_text
        self.offset = st.one_of(st.integers(-2, 30), huge_int) if hostile else st.integers(0, 30)

    def maybe(self, strategy: st.SearchStrategy) -> st.SearchStrategy:
        """The plausible value; for a hostile document, sometimes any JSON value instead."""
        return st.one_of(strategy, strategy, json_value) if self.hostile else strategy

    def entity(self) -> st.SearchStrategy:
        return st.fixed_dictionaries({"start": self.maybe(self.offset), "end": self.maybe(self.offset),
                                      "entity": self.maybe(self.name), "value": self.maybe(self.text)})

    def nlu_record(self) -> st.SearchStrategy:
        intent = st.one_of(self.name, st.sampled_from(["", "a#b", "#", "oos"]))
        if not self.hostile:
            return fair_example().map(lambda e: {"text": e[0], "intent": e[1], "entities": [
                {"start": s, "end": t, "entity": n, "value": e[0][s:t]} for s, t, n in e[2]]})
        return st.fixed_dictionaries(
            {"text": self.maybe(self.text)},
            optional={"intent": self.maybe(intent), "intents": self.maybe(st.lists(self.name, max_size=3)),
                      "entities": self.maybe(st.lists(self.entity(), max_size=2))})

    def qa_record(self) -> st.SearchStrategy:
        return st.fixed_dictionaries(
            {"question": self.maybe(self.text), "answer": self.maybe(self.text)},
            optional={"id": self.maybe(st.one_of(self.name, st.integers())), "intent": self.maybe(self.name),
                      "tags": self.maybe(st.one_of(self.name, st.lists(self.name, max_size=3))),
                      "source": self.maybe(self.name)})

    def conversation(self) -> st.SearchStrategy:
        role = st.sampled_from(["customer", "agent", "user", "bot", "?"])
        turn = st.fixed_dictionaries({"role": self.maybe(role), "text": self.maybe(self.text)})
        return st.one_of(st.fixed_dictionaries({"id": self.maybe(self.name),
                                                "turns": self.maybe(st.lists(turn, max_size=4))}),
                         st.lists(turn, max_size=3))

    def rasa_json(self) -> st.SearchStrategy:
        records = st.lists(self.maybe(self.nlu_record()), max_size=4)
        return st.fixed_dictionaries({"rasa_nlu_data": self.maybe(st.fixed_dictionaries(
            {"common_examples": self.maybe(records)}, optional={"entity_synonyms": json_value}))})

    def clinc(self) -> st.SearchStrategy:
        pairs = self.maybe(st.lists(self.maybe(st.tuples(self.text, self.maybe(self.name)).map(list)), max_size=4))
        splits = st.fixed_dictionaries({"train": pairs, "oos_train": pairs}, optional={"val": pairs, "oos_val": pairs})
        if not self.hostile:
            return splits
        return st.one_of(splits, st.dictionaries(st.sampled_from(["train", "val", "oos_train", "test"]), pairs, max_size=4))

    def nlupp(self) -> st.SearchStrategy:
        if not self.hostile:
            item = fair_example().map(lambda e: {"text": e[0], "intents": [i for i in e[1].split("#") if i],
                                                 "slots": {n: {"span": [s, t], "text": e[0][s:t]} for s, t, n in e[2]}})
            return st.lists(item, max_size=4)
        span = st.lists(self.offset, min_size=2, max_size=2)
        slot = st.fixed_dictionaries({"span": self.maybe(span)}, optional={"text": self.maybe(self.text)})
        item = st.fixed_dictionaries({"text": self.maybe(self.text)},
                                     optional={"intents": self.maybe(st.lists(self.name, max_size=3)),
                                               "slots": self.maybe(st.dictionaries(self.name, slot, max_size=2))})
        return st.lists(self.maybe(item), max_size=4)

    def transcripts(self) -> st.SearchStrategy:
        items = st.lists(self.maybe(self.conversation()), max_size=4)
        return st.one_of(items, st.fixed_dictionaries({"conversations": self.maybe(items)}))

    def finish(self, text: str) -> st.SearchStrategy:
        return spliced(text) if self.hostile else st.just(text)

    def jsonl(self, record: st.SearchStrategy) -> st.SearchStrategy:
        lines = st.lists(st.one_of(record, json_value, deep) if self.hostile else record, max_size=4)
        return st.tuples(lines, st.booleans(), st.sampled_from(["\n", "\r\n"]), st.booleans()).map(
            lambda t: t[2].join(dumps_json(line, t[1], None) for line in t[0]) + (t[2] if t[3] else "")
        ).flatmap(self.finish)

    def json(self, document: st.SearchStrategy) -> st.SearchStrategy:
        value = st.one_of(document, document, json_value, deep) if self.hostile else document
        return st.tuples(value, st.booleans(), st.sampled_from([None, 1, 2])).map(
            lambda t: dumps_json(*t)).flatmap(self.finish)

    def csv(self, columns: dict[str, st.SearchStrategy | None]) -> st.SearchStrategy:
        """A table with a header of ``columns`` (their cells drawn from the strategy given, or from text)."""
        names = list(columns)
        header = st.one_of(st.just(names), st.permutations(names),
                           *([st.lists(st.one_of(st.sampled_from(names), self.name), max_size=4)] if self.hostile else []))
        odd = st.sampled_from(["", "a#b", "customer", "agent", "1"])

        @st.composite
        def table(draw: st.DrawFn) -> str:
            chosen = draw(header)
            cells = [st.one_of(self.text, odd) if self.hostile or columns.get(n) is None else columns[n] for n in chosen]
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator=draw(st.sampled_from(["\n", "\r\n"])),
                                quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])))
            writer.writerow(chosen)
            writer.writerows([[draw(cell) for cell in cells] for _ in range(draw(st.integers(0, 4)))])
            return buffer.getvalue()

        return table().flatmap(self.finish)

    def rasa_yaml(self) -> st.SearchStrategy:
        if self.hostile:
            markup = st.sampled_from(["[x](city)", "[ab]{\"entity\": \"e\"}", "[x](", "[]()", "[x]{1}"])
            text, name, kinds = self.text, self.name, ["intent", "intent", "synonym", "other"]
        else:  # what fits a '|' block: no control characters or line breaks
            markup = st.sampled_from(["[x](city)", "[ab]{\"entity\": \"e\"}", "[x](city:synonym)"])
            text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
                           min_size=1, max_size=20).filter(str.strip)
            name, kinds = st.from_regex(r"[a-z_]{1,10}", fullmatch=True), ["intent", "intent", "synonym"]
        line = st.one_of(text, markup, st.tuples(text, markup).map("".join))

        @st.composite
        def document(draw: st.DrawFn) -> str:
            items = []
            for _ in range(draw(st.integers(0, 3))):
                kind = draw(st.sampled_from(kinds))
                name_, lines = draw(name), draw(st.lists(line, max_size=3))
                if draw(st.booleans()):  # a '|' block written by hand, odd characters and all
                    block = "".join(f"    - {x}\n" for x in lines)
                    items.append(f"- {kind}: {name_}\n  examples: |\n{block}")
                else:  # the same, serialised by PyYAML (quoting, escapes)
                    examples = "".join(f"- {x}\n" for x in lines)
                    items.append(yaml.safe_dump([{kind: name_, "examples": examples}], allow_unicode=draw(st.booleans())))
            text = draw(st.sampled_from(['version: "3.1"\n', "", "# a comment\n"])) + "nlu:\n" + "".join(items)
            if self.hostile and draw(st.booleans()):
                text += draw(st.sampled_from([
                    "nlu:\n- intent: again\n  examples: |\n    - x\n", "responses: {}\n",
                    f"deep: {'[' * 150}{']' * 150}\n", "n: 1" + "0" * 5000 + "\n", "a: &a [*a]\n",
                    "when: 2001-02-30\n", "x: !!python/name:os.system\n", "s: \"\\ud800\"\n"]))
            return text

        return document().flatmap(self.finish)


FAIR, HOSTILE = Shapes(hostile=False), Shapes(hostile=True)


def cases(build: Callable[[Shapes], st.SearchStrategy]) -> st.SearchStrategy:
    """A file's text: of the format's shape with fair values, with hostile values, or spliced."""
    return st.one_of(build(FAIR), build(HOSTILE))


IMPORTER_CASES: dict[str, tuple[str, st.SearchStrategy]] = {
    "jsonl": ("data.jsonl", cases(lambda s: s.jsonl(s.nlu_record()))),
    "rasa_yaml": ("nlu.yml", cases(lambda s: s.rasa_yaml())),
    "rasa_json": ("nlu.json", cases(lambda s: s.json(s.rasa_json()))),
    "csv": ("data.csv", cases(lambda s: s.csv({"text": None, "label": s.name}))),
    "clinc150": ("data_full.json", cases(lambda s: s.json(s.clinc()))),
    "nlupp": ("fold0.json", cases(lambda s: s.json(s.nlupp()))),
}
SOURCE_CASES: dict[str, tuple[str, st.SearchStrategy]] = {
    "qa_jsonl": ("qa.jsonl", cases(lambda s: s.jsonl(s.qa_record()))),
    "qa_csv": ("qa.csv", cases(lambda s: s.csv({"question": None, "answer": None, "intent": s.name, "tags": None,
                                                 "id": None}))),
    "transcripts_json": ("chats.json", cases(lambda s: s.json(s.transcripts()))),
    "transcripts_jsonl": ("chats.jsonl", cases(lambda s: s.jsonl(s.conversation()))),
    "transcripts_csv": ("chats.csv", cases(lambda s: s.csv({
        "conversation_id": st.sampled_from(["c1", "c2"]), "role": st.sampled_from(["customer", "agent", "user"]),
        "text": None}))),
}


@st.composite
def bio_files(draw: st.DrawFn) -> dict[str, str]:
    shapes = draw(st.sampled_from([FAIR, HOSTILE]))
    count = draw(st.integers(0, 4))
    tokens = [draw(st.lists(shapes.name, min_size=1, max_size=4)) for _ in range(count)]
    tag = st.sampled_from(["O", "B-city", "I-city", "I-x", "B-", "X-y", "b-c"] if shapes.hostile else ["O", "B-city", "I-city"])
    tags = [[draw(tag) for _ in line] for line in tokens]
    labels = [draw(st.one_of(plain_text, st.sampled_from(["a#b", "", " "])) if shapes.hostile else plain_text)
              for _ in range(count)]
    if shapes.hostile and count and draw(st.booleans()):
        draw(st.sampled_from([tags[-1], labels])).pop()
    return {"seq.in": "\n".join(" ".join(line) for line in tokens),
            "seq.out": "\n".join(" ".join(line) for line in tags), "label": "\n".join(labels)}


def fresh(tmp_path_factory: pytest.TempPathFactory, name: str, content: bytes) -> Path:
    path = tmp_path_factory.mktemp("hostile") / name
    path.write_bytes(content)
    return path


# --- the properties ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(IMPORTER_CASES))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data(), bom=st.booleans())
def test_importers_read_hostile_files_or_name_them(tmp_path_factory, fmt, data, bom):
    name, document = IMPORTER_CASES[fmt]
    content = data.draw(st.one_of(st.binary(max_size=300), document.map(lambda t: to_bytes(t, bom))), label="content")
    path = fresh(tmp_path_factory, name, content)
    examples = honours_the_contract(lambda: load_examples(path, fmt), path)
    if examples is not None:
        assert examples and all(e.text for e in examples)
        assert all(e.span_problem() is None for e in examples)
    honours_the_contract(lambda: load_examples(path), path)  # detection, then whichever importer it picks


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(files=bio_files(), garbage=st.one_of(st.none(), st.binary(max_size=100)))
def test_the_bio_importer_reads_hostile_folders_or_names_them(tmp_path_factory, files, garbage):
    folder = tmp_path_factory.mktemp("bio")
    for name, text in files.items():
        (folder / name).write_bytes(to_bytes(text + "\n", False))
    if garbage is not None:
        (folder / "label").write_bytes(garbage)
    honours_the_contract(lambda: load_examples(folder, "bio"), folder)


@pytest.mark.parametrize("case", sorted(SOURCE_CASES))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data(), bom=st.booleans())
def test_qa_sources_read_hostile_files_or_name_them(tmp_path_factory, case, data, bom):
    name, document = SOURCE_CASES[case]
    content = data.draw(st.one_of(st.binary(max_size=300), document.map(lambda t: to_bytes(t, bom))), label="content")
    path = fresh(tmp_path_factory, name, content)
    fmt = "transcripts_json" if case == "transcripts_jsonl" else case
    records = honours_the_contract(lambda: load_records(path, fmt), path)
    if records is not None:
        assert all(r.question.strip() and r.answer.strip() and r.id for r in records)
        json.dumps([r.to_dict() for r in records], ensure_ascii=False).encode("utf-8")  # storable as is
    honours_the_contract(lambda: load_qa([path]), path)  # detection, Q&A formats then NLU formats


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(text=cases(lambda s: s.jsonl(s.nlu_record())), bom=st.booleans())
@example(text='{"text": "one\u2028two", "intent": "a"}\n', bom=False)
@example(text='{"text": "thanks", "intents": []}\n', bom=False)
def test_data_convert_writes_what_it_reads_back_and_keeps_out_on_failure(tmp_path_factory, capsys, text, bom):
    folder = tmp_path_factory.mktemp("convert")
    source, out = folder / "in.jsonl", folder / "out.jsonl"
    source.write_bytes(to_bytes(text, bom))
    out.write_bytes(b"previous\n")
    with within():
        code = main(["data", "convert", str(source), "--out", str(out), "--force"])
    err = capsys.readouterr().err
    assert code in (0, 2, 3), err  # never 70, the exit code of an unexpected exception
    if code == 0:
        assert load_examples(out) == load_examples(source)
    else:
        assert out.read_bytes() == b"previous\n" and str(source) in err


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(examples=st.lists(st.builds(lambda t, i: (t, i), plain_text, st.sampled_from(["a", "b#c", ""])),
                         min_size=1, max_size=5))
def test_write_jsonl_output_always_reads_back(tmp_path_factory, examples):
    from nlu.schema import Example

    data = [Example(text, intent) for text, intent in examples]  # "" and "a" alone: "intents": [] keeps it multi-label
    path = tmp_path_factory.mktemp("write") / "data.jsonl"
    write_jsonl(data, path)
    assert load_examples(path) == data
