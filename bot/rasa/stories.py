"""Rasa stories, rules and test stories as csbot conversation tests (:mod:`bot.stories`), where they map.

Each user turn becomes a step: a test story's ``user:`` text (entity markup removed, annotated entities
expected as slot values when a form asks for them), or for a training story or rule the intent's first
example text. The bot's actions until the next user turn become the step's expectations: ``utter_x``
expects the reply to match the fixed words of the csbot template made from ``x`` (every variant, as a
regular expression; placeholders match anything), a form expects its next slot question or, once its slots
are filled, its intent's template; a retrieval response (``utter_faq/ask_fees``) expects its answer.

What does not map is left out with a note: stories with checkpoints or ``or:`` alternatives, rules with
conditions or without a user turn, turns during a form that neither fill it nor are answered beside it
(leaving a form with ``deny``), and custom actions (only their expectation is dropped).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.rasa.domain import BUILTIN_ACTIONS, OUT_OF_SCOPE_INTENTS, DomainConversion

_FIELD = re.compile(r"\{[^{}]*\}")
_MARKUP = re.compile(r"\[([^\[\]]+)\](?:\(([^()]*)\)|(\{[^{}]*\}))")


@dataclass
class StoriesConversion:
    """The csbot stories (dicts for a ``stories:`` file), and a note for each story or step left out."""

    stories: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    left_out: int = 0


def text_pattern(texts: Sequence[str]) -> str | None:
    """A regular expression matching any of ``texts`` as rendered: their fixed words escaped, each ``{field}``
    matching anything. None when no text has fixed words."""
    options = []
    for text in texts:
        chunks = [re.escape(chunk.strip()) for chunk in _FIELD.split(text) if chunk.strip()]
        if chunks:
            options.append(".*?".join(chunks))
    if not options:
        return None
    unique = list(dict.fromkeys(options))
    return unique[0] if len(unique) == 1 else "(?:" + "|".join(unique) + ")"


def strip_markup(text: str) -> tuple[str, dict[str, str]]:
    """A test story's user text without entity markup, and the annotated entities (name -> value as mapped)."""
    entities: dict[str, str] = {}

    def keep(match: re.Match[str]) -> str:
        surface = match[1]
        if match[2] is not None:
            name, _, value = match[2].partition(":")
            entities[name.strip()] = value.strip() or surface
        else:
            import json

            try:
                spec = json.loads(match[3])
            except ValueError:
                return match[0]
            if isinstance(spec, dict) and spec.get("entity"):
                entities[str(spec["entity"])] = str(spec.get("value") or surface)
        return surface

    return _MARKUP.sub(keep, text).strip(), entities


@dataclass
class _Turn:
    text: str
    intent: str
    entities: dict[str, str]
    events: list[Mapping[str, Any]] = field(default_factory=list)


def convert_stories(
    items: Sequence[Mapping[str, Any]],
    conversion: DomainConversion,
    answers: Mapping[str, str],
    example_for: Callable[[str, Sequence[str]], tuple[str, dict[str, str], str] | None],
    kind: str = "story",
) -> StoriesConversion:
    """Convert Rasa ``stories:`` or ``rules:`` items (``kind``: "story" or "rule") to csbot stories.

    ``conversion`` is the converted domain; ``answers`` maps a retrieval response (``utter_faq/ask_fees``) to
    its answer text; ``example_for(intent, entity_names)`` gives an example text with those entities, their
    values and the example's Rasa intent (for turns without a ``user:`` text), or None.
    """
    result = StoriesConversion()
    for index, item in enumerate(items):
        name = str(item.get(kind) or item.get("story") or item.get("rule") or f"{kind} {index + 1}")
        try:
            story = _convert(name, item, conversion, answers, example_for, result.notes)
        except _LeftOut as exc:
            result.notes.append(f"{kind} {name!r} left out: {exc}")
            result.left_out += 1
            continue
        result.stories.append(story)
    return result


class _LeftOut(Exception):
    """Why one story does not map (internal)."""


def _convert(name: str, item: Mapping[str, Any], conversion: DomainConversion, answers: Mapping[str, str],
             example_for: Callable[[str, Sequence[str]], tuple[str, dict[str, str], str] | None],
             notes: list[str]) -> dict[str, Any]:
    if item.get("condition"):
        raise _LeftOut("rules with a condition (active_loop, slot values) have no equivalent")
    turns: list[_Turn] = []
    for step in item.get("steps") or []:
        if not isinstance(step, Mapping):
            raise _LeftOut("a step that is not a mapping")
        if "checkpoint" in step:
            raise _LeftOut("checkpoints have no equivalent (write the joined story out whole)")
        if "or" in step:
            raise _LeftOut("'or:' alternatives have no equivalent (write one story per alternative)")
        if "intent" in step or "user" in step:
            turns.append(_user_turn(step, example_for))
        elif turns:
            turns[-1].events.append(step)
        elif step.get("action") not in (None, "action_listen"):
            raise _LeftOut("it starts with a bot action, not a user turn")
    if not turns:
        raise _LeftOut("no user turn")
    domain = conversion.domain
    form: str | None = None
    filled: set[str] = set()
    steps = []
    for number, turn in enumerate(turns, start=1):
        intent = turn.intent.split("/", 1)[0]
        actions = [str(e["action"]) for e in turn.events if "action" in e]
        expect: dict[str, Any] = {}
        texts: list[str] = []
        if intent in OUT_OF_SCOPE_INTENTS:
            pattern = text_pattern(_texts(domain, "out_of_scope") + _texts(domain, "fallback"))
            expect["source"] = "fallback"
            if pattern:
                texts.append(pattern)
        elif form is not None:
            slots = conversion.form_slots[form]
            fills = [s for s in slots if _entity_value(turn.entities, domain, s) is not None]
            if actions and actions[0] == form:  # the form takes the answer
                requested = next((s for s in slots if s not in filled), None)
                filled.update(fills or ([requested] if requested else []))
                expect["slots"] = {s: _entity_value(turn.entities, domain, s) for s in fills}
            elif actions and actions[-1] == form and all(a.startswith("utter_") for a in actions[:-1]):
                spec = domain["intents"].get(intent, {})
                if not (spec.get("chitchat") or spec.get("retrieve")):
                    raise _LeftOut(f"turn {number} ({intent}) is answered beside form {form!r}, which csbot does "
                                   "only for chit-chat and questions")
                texts.extend(_utter_patterns(actions[:-1], conversion, answers, notes, name, turn.intent))
                expect["intent"] = intent
                form = _form_step(form, filled, conversion, {}, texts)
                steps.append({"user": turn.text, "expect": {**expect, "text": texts}})
                continue
            else:
                raise _LeftOut(f"turn {number} ({intent}) during form {form!r} neither fills it nor is answered "
                               "beside it (leaving a form has no equivalent in csbot's dialogue yet)")
            form = _form_step(form, filled, conversion, expect, texts)
        else:
            expect["intent"] = intent
            started = next((a for a in actions if a in conversion.forms), None)
            if started is not None:
                if conversion.forms[started] != intent:
                    raise _LeftOut(f"form {started!r} follows {intent!r}, but csbot starts it from "
                                   f"{conversion.forms[started]!r} only")
                slots = conversion.form_slots[started]
                filled = {s for s in slots if _entity_value(turn.entities, domain, s) is not None}
                if filled:
                    expect["slots"] = {s: _entity_value(turn.entities, domain, s) for s in filled}
                form = _form_step(started, filled, conversion, expect, texts)
            else:
                texts.extend(_utter_patterns(actions, conversion, answers, notes, name, turn.intent))
                spec = domain["intents"].get(intent, {})
                if spec.get("handoff"):
                    expect.update(source="handoff", handoff=True)
                elif spec.get("retrieve"):
                    expect["source"] = "retrieve"
                elif texts:
                    expect["source"] = "template"
        if texts:
            expect["text"] = texts
        if not expect.get("slots"):
            expect.pop("slots", None)
        steps.append({"user": turn.text, "expect": expect})
    return {"name": name, "steps": steps}


def _user_turn(step: Mapping[str, Any],
               example_for: Callable[[str, Sequence[str]], tuple[str, dict[str, str], str] | None]) -> _Turn:
    intent = str(step.get("intent") or "").strip()
    if step.get("user") is not None:
        text, entities = strip_markup(str(step["user"]))
        if not intent:
            raise _LeftOut(f"the user turn {text!r} has no intent")
        return _Turn(text, intent, entities)
    wanted: dict[str, str] = {}
    for entry in step.get("entities") or []:
        if isinstance(entry, Mapping):
            wanted.update({str(k): str(v) for k, v in entry.items() if k not in ("role", "group")})
            if "entity" in entry:
                wanted[str(entry["entity"])] = str(entry.get("value", ""))
        else:
            wanted[str(entry)] = ""
    found = example_for(intent, sorted(wanted))
    if found is None:
        need = f" with entities {sorted(wanted)}" if wanted else ""
        raise _LeftOut(f"no NLU example of {intent!r}{need} to say for this turn")
    text, entities, rasa_intent = found
    return _Turn(text, rasa_intent, entities)


def _entity_value(entities: Mapping[str, str], domain: Mapping[str, Any], slot: str) -> str | None:
    spec = domain["slots"].get(slot, {})
    for entity in spec.get("entities") or [slot]:
        if entity in entities:
            return entities[entity]
    return None


def _form_step(form: str, filled: set[str], conversion: DomainConversion, expect: dict[str, Any],
               texts: list[str]) -> str | None:
    """Expect the form's next question, or its intent's template once every slot is filled; the form still open."""
    missing = [s for s in conversion.form_slots[form] if s not in filled]
    if missing:
        expect["source"] = "ask_slot"
        pattern = text_pattern([conversion.prompts[missing[0]]])
        if pattern:
            texts.append(pattern)
        return form
    expect["source"] = "template"
    pattern = text_pattern(_texts(conversion.domain, conversion.forms[form]))
    if pattern:
        texts.append(pattern)
    return None


def _texts(domain: Mapping[str, Any], template: str) -> list[str]:
    return [v["text"] for v in domain["templates"].get(template, []) if v.get("text")]


def _utter_patterns(actions: Sequence[str], conversion: DomainConversion, answers: Mapping[str, str],
                    notes: list[str], story: str, intent: str) -> list[str]:
    """Patterns for the ``utter_*`` actions of one turn; ``intent`` is the turn's Rasa intent (``faq/ask_fees``),
    whose answer a plain ``utter_faq`` gives."""
    patterns = []
    for action in actions:
        if action in BUILTIN_ACTIONS or action in conversion.forms:
            continue
        if "/" in intent and action == f"utter_{intent.split('/', 1)[0]}" and f"utter_{intent}" in answers:
            action = f"utter_{intent}"
        if action in answers:
            texts = [answers[action]]
        elif action in conversion.response_templates:
            texts = _texts(conversion.domain, conversion.response_templates[action])
        else:
            notes.append(f"story {story!r}: the expectation of {action!r} is left out (no csbot template or answer "
                         "comes from it)")
            continue
        pattern = text_pattern(texts)
        if pattern:
            patterns.append(pattern)
    return patterns


__all__ = ["StoriesConversion", "convert_stories", "strip_markup", "text_pattern"]
