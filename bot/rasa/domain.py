"""A Rasa ``domain.yml`` (with the project's responses, rules and stories) as a csbot domain, and notes on what
has no csbot equivalent.

What maps: intents (a retrieval intent such as ``faq`` becomes ``retrieve: true``; greetings and the like
``chitchat``; a request for a person ``handoff``); a form's ``required_slots`` go to the intent whose rule or
story starts the form, with the form's submit response as that intent's template; each slot a form asks
gets its type (float: number, categorical: a regex of its values), its entity mapping and its prompt from
``utter_ask_<form>_<slot>`` or ``utter_ask_<slot>``; an intent's response (the ``utter_*`` action its
rule or story runs, else ``utter_<intent>``) becomes the intent's template with every variant, buttons and
images; ``utter_default`` becomes the ``fallback`` template and the out-of-scope rule's response the
``out_of_scope`` template. A button payload ``/intent{...}`` becomes the intent's first example text,
since csbot sends a payload back as the customer's words.

Everything else is a note: custom actions, slot mappings other than from_entity and from_text, slot
conditions, slots no form asks, conditional and channel-specific response variants, responses no intent
uses, entity roles and groups, ``session_config``, a form's ``ignored_intents``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Intents csbot answers beside a form, by their usual Rasa names.
CHITCHAT_INTENTS = frozenset({"greet", "goodbye", "thankyou", "thank_you", "thanks", "bot_challenge", "chitchat",
                              "mood_great", "mood_unhappy", "how_are_you", "whoareyou", "compliment"})
#: Intents that ask for a person, by their usual Rasa names.
HANDOFF_INTENTS = frozenset({"human_handoff", "handoff", "talk_to_human", "request_human", "speak_to_human",
                             "agent", "live_agent"})
#: Rasa intents csbot treats as out of scope (its model's out-of-scope label), not as domain intents.
OUT_OF_SCOPE_INTENTS = frozenset({"out_of_scope", "nlu_fallback"})
#: Actions Rasa runs itself; they need no note.
BUILTIN_ACTIONS = frozenset({"action_listen", "action_restart", "action_session_start", "action_default_fallback",
                             "action_deactivate_loop", "action_revert_fallback_events", "action_two_stage_fallback",
                             "action_back", "action_unlikely_intent", "action_extract_slots"})

_SLOT_TYPES = {"text": "text", "float": "number", "any": "any", "categorical": "text", "bool": "text",
               "list": "any"}
_PAYLOAD = re.compile(r"^/(?P<intent>[\w/-]+)(?P<entities>\{.*\})?\s*$", re.DOTALL)


@dataclass
class DomainConversion:
    """The csbot domain (a plain dict, valid for :class:`bot.domain.schema.Domain`) and what did not map.

    ``response_templates`` maps each Rasa response that became a csbot template to the template's name
    (one response may answer several intents; the first is kept here); ``forms`` each form to the intent
    that runs it; ``prompts`` each slot a form asks to its prompt text.
    """

    domain: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    response_templates: dict[str, str] = field(default_factory=dict)
    forms: dict[str, str] = field(default_factory=dict)
    form_slots: dict[str, list[str]] = field(default_factory=dict)
    prompts: dict[str, str] = field(default_factory=dict)


def intent_names(rasa_domain: Mapping[str, Any]) -> list[str]:
    """The intents a Rasa domain lists (plain names or one-key mappings with options)."""
    names = []
    for entry in rasa_domain.get("intents") or []:
        if isinstance(entry, str):
            names.append(entry)
        elif isinstance(entry, dict) and len(entry) == 1:
            names.append(str(next(iter(entry))))
    return names


def follow_ups(story_steps: Iterable[Sequence[Mapping[str, Any]]]) -> dict[str, list[str]]:
    """For each intent, the actions a rule or story runs right after it (until the next user turn), first seen."""
    found: dict[str, list[str]] = {}
    for steps in story_steps:
        current: str | None = None
        loop = False
        for step in steps:
            if not isinstance(step, Mapping):
                continue
            if "active_loop" in step:
                loop = step["active_loop"] is not None
            if "intent" in step or "user" in step:
                # a turn inside a form answers the form, not the intent in general
                current = None if loop else str(step.get("intent") or "").split("/", 1)[0] or None
                if current is not None and current in found:
                    current = None  # the first rule or story to answer an intent decides
                elif current is not None:
                    found[current] = []
            elif "action" in step and current is not None:
                found[current].append(str(step["action"]))
    return found


def submit_actions(rules: Iterable[Mapping[str, Any]], form: str) -> list[str]:
    """The actions a rule runs after ``form`` is done (``active_loop: null``), from the rules conditioned on it."""
    for rule in rules:
        steps = rule.get("steps") or []
        done = False
        actions: list[str] = []
        for step in steps:
            if not isinstance(step, Mapping):
                continue
            if "active_loop" in step and step["active_loop"] is None:
                done = True
            elif done and "action" in step:
                actions.append(str(step["action"]))
        if done and any(isinstance(s, Mapping) and s.get("action") == form for s in steps):
            return actions
    return []


def convert_domain(
    rasa_domain: Mapping[str, Any],
    responses: Mapping[str, Any] | None = None,
    rules: Sequence[Mapping[str, Any]] = (),
    stories: Sequence[Mapping[str, Any]] = (),
    examples: Mapping[str, str] | None = None,
    retrieval_intents: Iterable[str] = (),
    has_out_of_scope: bool = False,
) -> DomainConversion:
    """Convert a Rasa domain to a csbot domain dict.

    ``responses`` are the domain's and the data files' responses together (the domain's are used when not
    given); ``rules`` and ``stories`` (Rasa items with ``steps``) tell which response or form answers each
    intent; ``examples`` gives an intent's first example text (for ``/intent`` button payloads);
    ``retrieval_intents`` names the base intents with ``faq/...`` sub-intents; ``has_out_of_scope``: the NLU
    data has out-of-scope examples, so an ``out_of_scope`` template can be used.
    """
    notes: list[str] = []
    responses = dict(responses if responses is not None else rasa_domain.get("responses") or {})
    examples = dict(examples or {})
    retrieval = set(retrieval_intents)
    out = DomainConversion({"version": 1, "policy": "rules", "slots": {}, "intents": {}, "templates": {}}, notes)
    templates: dict[str, list[dict[str, Any]]] = out.domain["templates"]
    intents: dict[str, dict[str, Any]] = out.domain["intents"]
    used_responses: set[str] = set()

    def template_from(response: str, name: str) -> bool:
        variants = _variants(response, responses.get(response), examples, notes)
        if not variants:
            return False
        templates[name] = variants
        out.response_templates.setdefault(response, name)
        used_responses.add(response)
        return True

    actions_after = follow_ups([s.get("steps") or [] for s in (*rules, *stories)
                                if not s.get("condition") and not _is_checkpointed(s)])
    forms = _forms(rasa_domain.get("forms") or {}, notes)
    form_intent: dict[str, str] = {}
    for intent, actions in actions_after.items():
        form = next((a for a in actions if a in forms), None)
        if form is not None and form not in form_intent:
            form_intent[form] = intent

    declared = intent_names(rasa_domain)
    for name in [*declared, *sorted(retrieval - set(declared))]:
        base = name.split("/", 1)[0]
        if base in OUT_OF_SCOPE_INTENTS or base in intents:
            continue
        spec: dict[str, Any] = {}
        if base in retrieval:
            spec["retrieve"] = True
        elif base in HANDOFF_INTENTS:
            spec["handoff"] = True
        elif base in CHITCHAT_INTENTS:
            spec["chitchat"] = True
        intents[base] = spec
        actions = actions_after.get(base, [])
        form = next((f for f, i in form_intent.items() if i == base), None)
        if form is not None:
            spec["required_slots"] = list(forms[form])
            out.forms[form] = base
            out.form_slots[form] = list(forms[form])
            actions = submit_actions(rules, form) or submit_actions(stories, form)
        if base in retrieval:
            continue  # answered from the Q&A records made of its sub-intents' responses
        utters = [a for a in actions if a.startswith("utter_")]
        custom = [a for a in actions if not a.startswith("utter_") and a not in forms and a not in BUILTIN_ACTIONS]
        for action in custom:
            notes.append(f"intent {base!r}: the custom action {action!r} has no equivalent; write it as an async "
                         f"function and set intents.{base}.action (its response is kept)")
        target = "handoff" if spec.get("handoff") else base
        if not utters and f"utter_{base}" in responses:
            utters = [f"utter_{base}"]
        if utters:
            template_from(utters[0], target)
            for extra in utters[1:]:
                notes.append(f"intent {base!r}: {extra!r} follows {utters[0]!r}; csbot answers with one template, "
                             f"so only the first is kept")
        elif form is None and not custom and base not in ("affirm", "deny", "inform"):
            notes.append(f"intent {base!r}: no rule, story or utter_{base} response answers it; it has no template")

    for form, slots in forms.items():
        if form not in out.forms:
            notes.append(f"form {form!r}: no rule or story starts it after an intent, so no intent asks its slots")
            continue
        for slot in slots:
            out.domain["slots"][slot] = _slot(slot, form, (rasa_domain.get("slots") or {}).get(slot), responses,
                                              notes, used_responses)
            out.prompts[slot] = out.domain["slots"][slot]["prompt"]
    asked = {slot for slots in out.form_slots.values() for slot in slots}
    for slot in rasa_domain.get("slots") or {}:
        if slot not in asked and slot != "requested_slot":
            notes.append(f"slot {slot!r}: no form asks it; csbot keeps slots only for the intents that need them")

    if "utter_default" in responses:
        template_from("utter_default", "fallback")
    oos = [a for name in OUT_OF_SCOPE_INTENTS for a in actions_after.get(name, []) if a.startswith("utter_")]
    if oos:
        if has_out_of_scope:
            template_from(oos[0], "out_of_scope")
        if "fallback" not in templates:
            template_from(oos[0], "fallback")
    for name in responses:
        if name not in used_responses and not name.startswith("utter_ask_") and "/" not in name:
            notes.append(f"response {name!r}: no intent answers with it, so it is not kept")
    _domain_notes(rasa_domain, notes)
    return out


def _is_checkpointed(story: Mapping[str, Any]) -> bool:
    return any(isinstance(s, Mapping) and ("checkpoint" in s or "or" in s) for s in story.get("steps") or [])


def _forms(raw: Any, notes: list[str]) -> dict[str, list[str]]:
    forms: dict[str, list[str]] = {}
    if not isinstance(raw, Mapping):
        return forms
    for name, spec in raw.items():
        spec = spec or {}
        required = spec.get("required_slots") if isinstance(spec, Mapping) else None
        if isinstance(required, Mapping):  # Rasa 2: slot -> its mappings
            notes.append(f"form {name!r}: slot mappings inside the form (Rasa 2 style) are read as slot names only")
            required = list(required)
        forms[str(name)] = [str(s) for s in required or []]
        if isinstance(spec, Mapping) and spec.get("ignored_intents"):
            notes.append(f"form {name!r}: ignored_intents {spec['ignored_intents']} has no equivalent (csbot "
                         "answers chit-chat beside a form and takes other intents as a topic switch)")
    return forms


def _slot(name: str, form: str, raw: Any, responses: Mapping[str, Any], notes: list[str],
          used: set[str]) -> dict[str, Any]:
    raw = raw if isinstance(raw, Mapping) else {}
    kind = str(raw.get("type", "text"))
    slot: dict[str, Any] = {"type": _SLOT_TYPES.get(kind, "text")}
    if kind == "categorical" and raw.get("values"):
        slot["regex"] = "(?:" + "|".join(re.escape(str(v)) for v in raw["values"]) + ")"
    elif kind == "bool":
        slot["regex"] = "(?:true|false|yes|no)"
        notes.append(f"slot {name!r}: a bool slot becomes a text slot taking true/false/yes/no")
    elif kind not in _SLOT_TYPES:
        notes.append(f"slot {name!r}: type {kind!r} (a custom slot type) becomes text")
    entities = []
    for mapping in raw.get("mappings") or []:
        if not isinstance(mapping, Mapping):
            continue
        mtype = mapping.get("type")
        if mtype == "from_entity" and mapping.get("entity"):
            entities.append(str(mapping["entity"]))
            if mapping.get("role") or mapping.get("group"):
                notes.append(f"slot {name!r}: the mapping's entity role/group has no equivalent (any "
                             f"{mapping['entity']!r} entity fills it)")
        elif mtype == "from_text":
            pass  # csbot takes a bare reply to the slot question as its value
        else:
            notes.append(f"slot {name!r}: the {mtype} mapping has no equivalent (csbot fills form slots from "
                         "entities and from the reply to the slot's question)")
        if mapping.get("conditions") or mapping.get("intent") or mapping.get("not_intent"):
            notes.append(f"slot {name!r}: mapping conditions (intent, not_intent, active_loop) have no equivalent")
    if entities and entities != [name]:
        slot["entities"] = sorted(set(entities))
    for response in (f"utter_ask_{form}_{name}", f"utter_ask_{name}"):
        variants = responses.get(response)
        text = next((v.get("text") for v in variants or [] if isinstance(v, Mapping) and v.get("text")), None)
        if text:
            slot["prompt"] = str(text)
            used.add(response)
            break
    else:
        slot["prompt"] = f"What is the {name.replace('_', ' ')}?"
        notes.append(f"slot {name!r}: no utter_ask_{name} response; its prompt is a plain question, reword it")
    return slot


def _variants(response: str, raw: Any, examples: Mapping[str, str], notes: list[str]) -> list[dict[str, Any]]:
    """csbot template variants of a Rasa response: conditional and channel-specific variants are left out (noted)
    unless nothing else is left."""
    if not isinstance(raw, list):
        if raw is not None:
            notes.append(f"response {response!r} is not a list of variants; left out")
        return []
    plain, special = [], []
    for variant in raw:
        if isinstance(variant, str):
            variant = {"text": variant}
        if not isinstance(variant, Mapping):
            continue
        (special if variant.get("condition") or variant.get("channel") else plain).append(variant)
    if special:
        notes.append(f"response {response!r}: {len(special)} conditional or channel-specific variant(s) have no "
                     f"equivalent" + (" and are left out" if plain else "; kept as plain variants"))
    result = []
    for variant in plain or special:
        converted: dict[str, Any] = {}
        if variant.get("text"):
            converted["text"] = str(variant["text"])
        buttons = []
        for button in variant.get("buttons") or []:
            if not isinstance(button, Mapping) or not button.get("title"):
                continue
            title, payload = str(button["title"]), button.get("payload")
            entry: dict[str, Any] = {"title": title}
            if payload is not None:
                entry["payload"] = _payload(str(payload), response, examples, notes)
            buttons.append(entry)
        if buttons:
            converted["buttons"] = buttons
        for key in ("image", "attachment", "custom"):
            if variant.get(key):
                converted[key] = variant[key]
        if variant.get("quick_replies") or variant.get("elements"):
            notes.append(f"response {response!r}: quick_replies/elements have no equivalent; left out")
        if converted:
            result.append(converted)
    return result


def _payload(payload: str, response: str, examples: Mapping[str, str], notes: list[str]) -> str:
    """A button payload as the customer's words: ``/intent{..}`` becomes the intent's first example text."""
    match = _PAYLOAD.match(payload)
    if match is None:
        return payload
    intent = match["intent"]
    text = examples.get(intent) or examples.get(intent.split("/", 1)[0])
    if text is None:
        notes.append(f"response {response!r}: payload {payload!r} names intent {intent!r}, which has no example; "
                     "kept as written")
        return payload
    extra = " (its entities are not sent)" if match["entities"] else ""
    notes.append(f"response {response!r}: payload {payload!r} became {text!r}, the intent's first example{extra}")
    return text


def _domain_notes(rasa_domain: Mapping[str, Any], notes: list[str]) -> None:
    for action in rasa_domain.get("actions") or []:
        name = str(action)
        if name.startswith("validate_"):
            notes.append(f"action {name!r}: form validation code has no equivalent; use a slot's type or regex")
        elif not name.startswith("utter_"):
            notes.append(f"action {name!r}: custom actions have no equivalent; csbot runs an intent's async "
                         "function (intents.NAME.action)")
    for entry in rasa_domain.get("entities") or []:
        if isinstance(entry, Mapping):
            for name, spec in entry.items():
                if isinstance(spec, Mapping) and (spec.get("roles") or spec.get("groups")):
                    notes.append(f"entity {name!r}: roles and groups have no equivalent; the entity keeps its name")
    for entry in rasa_domain.get("intents") or []:
        if isinstance(entry, Mapping):
            for name, spec in entry.items():
                if isinstance(spec, Mapping) and ({"use_entities", "ignore_entities"} & set(spec)):
                    notes.append(f"intent {name!r}: use_entities/ignore_entities have no equivalent")
    if rasa_domain.get("session_config"):
        notes.append("session_config has no equivalent; a session lasts sessions.ttl_seconds of the csbot config")
    if rasa_domain.get("config"):
        notes.append("the domain's config (store_entities_as_slots) has no equivalent")
    if rasa_domain.get("e2e_actions"):
        notes.append("e2e_actions have no equivalent")


__all__ = ["DomainConversion", "convert_domain", "follow_ups", "intent_names", "submit_actions"]
