"""A whole Rasa 3 project as a csbot project: :func:`convert_project` reads ``config.yml``, ``domain.yml`` (or a
``domain/`` folder), every YAML file under ``data/`` (NLU, responses, rules, stories, split by content) and
``tests/``, and writes a csbot bot into a folder::

    config.yml              csbot config: bot.domain, nlu_data, qa_data, stories, model dirs; nlu.entity_patterns
    domain.yml              the converted domain (bot.rasa.domain)
    data/nlu.jsonl          canonical training examples (retrieval intents as their base intent)
    data/out_of_scope.jsonl out_of_scope and out_of_scope/* examples, labelled out_of_scope
    data/qa.jsonl           one Q&A record per retrieval-intent example, answered by its response's text
    data/patterns.yml       regexes, lookups and synonyms (with entity value mappings), for the extractors
    stories/*.yml           test stories, rules and stories as conversation tests (bot.rasa.stories)
    conversion-report.md    what mapped, what did not and why, with counts

This is an offline conversion (``csbot init --from-rasa``), like training: it reads the NLU data with the
training importers, which the running bot never loads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.rasa.domain import OUT_OF_SCOPE_INTENTS, convert_domain
from bot.rasa.stories import convert_stories
from csbot.config import read_yaml
from csbot.errors import DataError
from nlu.schema import Example
from retrieval.records import QARecord

log = logging.getLogger(__name__)

_SUFFIXES = (".yml", ".yaml")
#: The Rasa pipeline components csbot's own model stands in for (everything else is noted as ignored too).
_REPLACED = {"DIETClassifier", "ResponseSelector", "FallbackClassifier", "EntitySynonymMapper",
             "RegexEntityExtractor", "WhitespaceTokenizer", "CountVectorsFeaturizer", "RegexFeaturizer",
             "LexicalSyntacticFeaturizer", "LanguageModelFeaturizer", "SpacyNLP", "SpacyTokenizer"}


@dataclass
class ConversionReport:
    """What :func:`convert_project` wrote, counted, and every note on what had no equivalent."""

    rasa_dir: Path
    out_dir: Path
    examples: int = 0
    out_of_scope_examples: int = 0
    intents: int = 0
    slots: int = 0
    templates: int = 0
    qa_records: int = 0
    synonyms: int = 0
    regexes: int = 0
    lookups: int = 0
    stories: int = 0
    stories_left_out: int = 0
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        """The report as Markdown (``conversion-report.md``)."""
        rows = [("NLU examples", self.examples), ("out-of-scope examples", self.out_of_scope_examples),
                ("intents", self.intents), ("form slots", self.slots), ("templates", self.templates),
                ("Q&A records (retrieval intents)", self.qa_records), ("synonyms", self.synonyms),
                ("regexes", self.regexes), ("lookup tables", self.lookups),
                ("conversation tests", self.stories), ("stories and rules left out", self.stories_left_out)]
        lines = [f"# Conversion of the Rasa project {self.rasa_dir}", "",
                 f"Written to `{self.out_dir}`. Train and test it with `csbot test stories --config "
                 f"{self.out_dir / 'config.yml'}`.", "", "| what | count |", "|---|---|"]
        lines += [f"| {what} | {count} |" for what, count in rows]
        lines += ["", "## Files written", ""] + [f"- `{name}`" for name in self.files]
        lines += ["", "## What had no equivalent, or changed", ""]
        lines += [f"- {note}" for note in self.notes] or ["- nothing"]
        return "\n".join(lines) + "\n"


def convert_project(rasa_dir: Path, out_dir: Path) -> ConversionReport:
    """Convert the Rasa project in ``rasa_dir`` into a csbot project in ``out_dir`` (created; files overwritten).

    A Rasa file that cannot be read or has the wrong shape raises :class:`~csbot.errors.DataError` naming the
    file and, when known, the line.
    """
    from training.data import write_jsonl
    from training.importers.rasa_yaml import OUT_OF_SCOPE, RasaNlu, base_intent, read_rasa_nlu

    rasa_dir, out_dir = Path(rasa_dir), Path(out_dir)
    if not rasa_dir.is_dir():
        raise DataError("not a folder (a Rasa project holds config.yml, domain.yml and data/)", rasa_dir)
    report = ConversionReport(rasa_dir, out_dir)
    notes = report.notes
    _config_notes(rasa_dir, notes)
    domain_data = _read_domain(rasa_dir)

    nlu = RasaNlu()
    responses: dict[str, Any] = dict(domain_data.get("responses") or {})
    rules: list[dict[str, Any]] = []
    stories: list[dict[str, Any]] = []
    data_dir = rasa_dir / "data"
    data_files = _yaml_files(data_dir) if data_dir.is_dir() else []
    if not data_files:
        raise DataError("no data/ folder with YAML files (NLU, responses, rules, stories)", rasa_dir)
    for path in data_files:
        content = read_yaml(path, DataError, what="Rasa data file")
        if content is None:
            continue
        if not isinstance(content, dict):
            raise DataError("a Rasa data file is a mapping (nlu:, responses:, rules:, stories:)", path, 1)
        if "nlu" in content:
            part = read_rasa_nlu(path)
            nlu.examples += part.examples
            nlu.origins += part.origins
            for value, variants in part.synonyms.items():
                for variant in variants:
                    nlu.add_synonym(value, variant)
            for name, patterns in part.regexes.items():
                nlu.regexes.setdefault(name, []).extend(patterns)
            for name, values in part.lookups.items():
                nlu.lookups.setdefault(name, []).extend(values)
            nlu.roles += part.roles
        elif "responses" in content:
            _check_mapping(content["responses"], "responses", path)
            responses.update(content["responses"])
        rules += _items(content, "rules", path)
        stories += _items(content, "stories", path)
        unknown = set(content) - {"version", "nlu", "responses", "rules", "stories"}
        if unknown:
            notes.append(f"{path.relative_to(rasa_dir)}: sections {sorted(unknown)} have no equivalent; left out")
    if not nlu.examples:
        raise DataError("no NLU examples under data/ (a file with 'nlu:' and intent items)", data_dir)
    for path in {p for p, _ in nlu.origins}:
        content = read_yaml(path, DataError, what="Rasa data file")
        if isinstance(content, dict) and isinstance(content.get("responses"), dict):
            responses.update(content["responses"])
    if nlu.roles:
        notes.append(f"entity roles and groups ({', '.join(sorted(set(nlu.roles))[:5])}) have no equivalent; "
                     "each entity keeps its name")

    # NLU data, out-of-scope data, Q&A records
    in_scope = [e for e in nlu.training_examples() if e.intent not in OUT_OF_SCOPE_INTENTS]
    out_of_scope = [Example(e.text, OUT_OF_SCOPE, list(e.entities)) for e in nlu.training_examples()
                    if e.intent in OUT_OF_SCOPE_INTENTS]
    if any(e.intent == "nlu_fallback" for e in nlu.examples):
        notes.append("nlu_fallback examples are trained as out_of_scope")
    retrieval = sorted({base_intent(e.intent) for e in nlu.examples
                        if "/" in e.intent and base_intent(e.intent) not in OUT_OF_SCOPE_INTENTS})
    sub_intents = sorted({e.intent for e in nlu.examples if "/" in e.intent
                          and base_intent(e.intent) == OUT_OF_SCOPE})
    if sub_intents:
        notes.append(f"out-of-scope sub-intents {sub_intents} are trained as out_of_scope, one label")
    answers: dict[str, str] = {}
    records: list[QARecord] = []
    missing: set[str] = set()
    for example in nlu.examples:
        if "/" not in example.intent or base_intent(example.intent) not in retrieval:
            continue
        response = f"utter_{example.intent}"
        text = _first_text(responses.get(response))
        if text is None:
            missing.add(response)
            continue
        answers[response] = text
        records.append(QARecord.create(example.text, text, intent=base_intent(example.intent),
                                       tags=[example.intent], source="rasa"))
    for response in sorted(missing):
        notes.append(f"retrieval intent {response[6:]!r} has no {response!r} response with a text; its examples "
                     "are trained but give no Q&A record")
    for name in sorted(r for r in responses if "/" in r and r not in answers):
        if len(responses.get(name) or []) > 1 or _has_buttons(responses.get(name)):
            notes.append(f"response {name!r}: only its first variant's text becomes the Q&A answer")
    examples_by_intent: dict[str, str] = {}
    for example in nlu.examples:
        examples_by_intent.setdefault(example.intent, example.text)
        examples_by_intent.setdefault(base_intent(example.intent), example.text)

    # the domain
    conversion = convert_domain(domain_data, responses, rules, stories, examples_by_intent, retrieval,
                                has_out_of_scope=bool(out_of_scope))
    notes += conversion.notes
    trained = {e.intent for e in in_scope}
    for name in list(conversion.domain["intents"]):
        if name not in trained:
            notes.append(f"intent {name!r} has no NLU examples; left out of the domain")
            del conversion.domain["intents"][name]
            conversion.domain["templates"].pop(name, None)

    # conversation tests
    def example_for(intent: str, entity_names: list[str] | tuple[str, ...]) -> tuple[str, dict[str, str], str] | None:
        for example in nlu.examples:
            if (example.intent == intent or base_intent(example.intent) == intent) and \
                    sorted({e.entity for e in example.entities}) == sorted(entity_names):
                return example.text, {e.entity: e.value for e in example.entities}, example.intent
        return None

    story_sets: dict[str, Any] = {}
    tests_dir = rasa_dir / "tests"
    test_items: list[dict[str, Any]] = []
    for path in _yaml_files(tests_dir) if tests_dir.is_dir() else []:
        content = read_yaml(path, DataError, what="Rasa test stories file")
        if isinstance(content, dict):
            test_items += _items(content, "stories", path)
            test_items += _items(content, "rules", path)
    for name, items, kind in (("test_stories", test_items, "story"), ("rules", rules, "rule"),
                              ("stories", stories, "story")):
        if items:
            converted = convert_stories(items, conversion, answers, example_for, kind)
            notes += converted.notes
            report.stories_left_out += converted.left_out
            if converted.stories:
                story_sets[name] = converted.stories
                report.stories += len(converted.stories)

    # write it all
    out_dir.mkdir(parents=True, exist_ok=True)
    written = report.files
    write_jsonl(in_scope, out_dir / "data" / "nlu.jsonl")
    written.append("data/nlu.jsonl")
    nlu_files = ["data/nlu.jsonl"]
    if out_of_scope:
        write_jsonl(out_of_scope, out_dir / "data" / "out_of_scope.jsonl")
        written.append("data/out_of_scope.jsonl")
        nlu_files.append("data/out_of_scope.jsonl")
    if records:
        (out_dir / "data" / "qa.jsonl").write_text(
            "".join(json.dumps(r.to_dict(), ensure_ascii=False, sort_keys=True) + "\n" for r in records),
            encoding="utf-8")
        written.append("data/qa.jsonl")
    patterns = nlu.patterns()
    if patterns:
        _write_yaml(out_dir / "data" / "patterns.yml", patterns,
                    "Entity patterns from the Rasa project: regexes and lookup tables per entity, and synonyms "
                    "(canonical value: its variants).")
        written.append("data/patterns.yml")
    _write_yaml(out_dir / "domain.yml", conversion.domain,
                f"Converted from the Rasa project {rasa_dir.name} by csbot init --from-rasa; see "
                "conversion-report.md. Schema: bot/domain/schema.py.")
    written.append("domain.yml")
    for name, items in story_sets.items():
        _write_yaml(out_dir / "stories" / f"{name}.yml", {"stories": items},
                    "Conversation tests converted from Rasa; run: csbot test stories")
        written.append(f"stories/{name}.yml")
    bot: dict[str, Any] = {"name": _assistant_name(rasa_dir), "domain": "domain.yml", "nlu_data": nlu_files,
                           "qa_data": ["data/qa.jsonl"] if records else [], "stories": "stories",
                           "model_dir": "models/nlu", "index_dir": "models/index"}
    config: dict[str, Any] = {"bot": bot}
    if patterns:
        config["nlu"] = {"entity_patterns": ["data/patterns.yml"]}
    _write_yaml(out_dir / "config.yml", config,
                "csbot configuration of the converted bot; every other setting keeps its default "
                "(configs/default.yaml). Relative paths start at this folder.")
    written.append("config.yml")

    report.examples, report.out_of_scope_examples = len(in_scope), len(out_of_scope)
    report.intents = len(conversion.domain["intents"])
    report.slots = len(conversion.domain["slots"])
    report.templates = len(conversion.domain["templates"])
    report.qa_records = len(records)
    report.synonyms = sum(len(v) for v in nlu.synonyms.values())
    report.regexes = sum(len(v) for v in nlu.regexes.values())
    report.lookups = len(nlu.lookups)
    written.append("conversion-report.md")
    (out_dir / "conversion-report.md").write_text(report.to_markdown(), encoding="utf-8")
    log.info("converted the Rasa project %s into %s: %d examples, %d intents, %d stories, %d notes", rasa_dir,
             out_dir, report.examples, report.intents, report.stories, len(notes))
    return report


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in _SUFFIXES)


def _items(content: Mapping[str, Any], key: str, path: Path) -> list[dict[str, Any]]:
    items = content.get(key)
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise DataError(f"'{key}:' must be a list of items with 'steps'", path, _key_line(path, key))
    for item in items:
        if not isinstance(item.get("steps"), list):
            name = item.get("story") or item.get("rule") or "?"
            raise DataError(f"{key[:-1]} {name!r} has no 'steps:' list", path, _key_line(path, key))
    return items


def _check_mapping(value: Any, key: str, path: Path) -> None:
    if not isinstance(value, dict):
        raise DataError(f"'{key}:' must be a mapping", path, _key_line(path, key))


def _key_line(path: Path, key: str) -> int | None:
    """The line of a top-level key, best effort."""
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if line.startswith(f"{key}:"):
            return number
    return None


def _read_domain(rasa_dir: Path) -> dict[str, Any]:
    """``domain.yml`` (or ``.yaml``), or every YAML file of a ``domain/`` folder merged."""
    candidates = [rasa_dir / "domain.yml", rasa_dir / "domain.yaml"]
    files = [p for p in candidates if p.is_file()][:1]
    if not files and (rasa_dir / "domain").is_dir():
        files = _yaml_files(rasa_dir / "domain")
    if not files:
        raise DataError("no domain.yml or domain/ folder", rasa_dir)
    merged: dict[str, Any] = {}
    for path in files:
        content = read_yaml(path, DataError, what="Rasa domain file")
        if content is None:
            continue
        if not isinstance(content, dict):
            raise DataError("a Rasa domain is a mapping (intents:, entities:, slots:, responses:, forms:)", path, 1)
        for key, value in content.items():
            if key in ("intents", "entities", "actions") and value is not None and not isinstance(value, list):
                raise DataError(f"'{key}:' must be a list", path, _key_line(path, key))
            if key in ("slots", "responses", "forms") and value is not None and not isinstance(value, dict):
                raise DataError(f"'{key}:' must be a mapping", path, _key_line(path, key))
            if isinstance(value, list):
                merged.setdefault(key, []).extend(value)
            elif isinstance(value, dict):
                merged.setdefault(key, {}).update(value)
            else:
                merged[key] = value
    return merged


def _config_notes(rasa_dir: Path, notes: list[str]) -> None:
    path = rasa_dir / "config.yml"
    if not path.is_file():
        notes.append("no config.yml: nothing to note about the pipeline")
        return
    config = read_yaml(path, DataError, what="Rasa config file") or {}
    if not isinstance(config, dict):
        raise DataError("a Rasa config is a mapping (language:, pipeline:, policies:)", path, 1)
    language = config.get("language")
    if language and str(language) != "en":
        notes.append(f"language {language!r}: csbot's default encoder (all-MiniLM-L6-v2) is English; set "
                     "training.base_model and retrieval.model to a model for this language")
    components = [str(c.get("name")) for c in config.get("pipeline") or [] if isinstance(c, dict)]
    if components:
        notes.append(f"the pipeline ({', '.join(components)}) is ignored: csbot trains one BERT intent and entity "
                     "model (training: in the csbot config)")
        fallback = next((c for c in config.get("pipeline") or [] if isinstance(c, dict)
                         and c.get("name") == "FallbackClassifier"), None)
        if fallback is not None and fallback.get("threshold") is not None:
            notes.append(f"FallbackClassifier threshold {fallback['threshold']} is not copied: csbot's model "
                         "chooses its intent threshold on dev data (set thresholds.intent in domain.yml to fix one)")
    policies = [str(p.get("name")) for p in config.get("policies") or [] if isinstance(p, dict)]
    if policies:
        notes.append(f"the policies ({', '.join(policies)}) are ignored: csbot's rule policy decides each turn "
                     "from the domain (bot/policy/rules.py)")


def _first_text(variants: Any) -> str | None:
    for variant in variants or []:
        if isinstance(variant, str) and variant.strip():
            return variant
        if isinstance(variant, dict) and variant.get("text") and not variant.get("condition"):
            return str(variant["text"])
    return None


def _has_buttons(variants: Any) -> bool:
    return any(isinstance(v, dict) and v.get("buttons") for v in variants or [])


def _assistant_name(rasa_dir: Path) -> str:
    config = rasa_dir / "config.yml"
    if config.is_file():
        data = read_yaml(config, DataError, what="Rasa config file")
        if isinstance(data, dict) and data.get("assistant_id"):
            return str(data["assistant_id"])
    return rasa_dir.resolve().name or "assistant"


def _write_yaml(path: Path, data: Any, comment: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)
    path.write_text(f"# {comment}\n{text}", encoding="utf-8")


__all__ = ["ConversionReport", "convert_project"]
