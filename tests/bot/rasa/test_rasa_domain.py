"""A Rasa domain as a csbot domain (bot/rasa/domain.py), and the domain loader's hint on a Rasa file."""

from __future__ import annotations

import pytest
import yaml

from bot.domain import Domain, DomainError, load_domain
from bot.rasa import convert_domain

RASA_DOMAIN = {
    "version": "3.1",
    "intents": ["greet", "faq", "order_pizza", {"out_of_scope": {"use_entities": []}}, "deny"],
    "entities": ["size"],
    "slots": {
        "size": {"type": "categorical", "values": ["small", "large"],
                 "mappings": [{"type": "from_entity", "entity": "pizza_size"}]},
        "hungry": {"type": "bool", "mappings": [{"type": "from_intent", "intent": "affirm", "value": True}]},
        "address": {"type": "text", "mappings": [{"type": "custom"}]},
    },
    "forms": {"pizza_form": {"required_slots": ["size", "address"]}},
    "responses": {
        "utter_greet": [{"text": "Hi!", "buttons": [{"title": "Pizza", "payload": "/order_pizza"}]}],
        "utter_ask_size": [{"text": "Which size?"}],
        "utter_ordered": [{"text": "A {size} pizza is coming.", "image": "https://x/p.png"},
                          {"text": "Only on Slack", "channel": "slack"}],
        "utter_default": [{"text": "Pardon?"}],
        "utter_unused": [{"text": "never said"}],
    },
    "actions": ["action_pay"],
    "session_config": {"session_expiration_time": 60},
}
RULES = [
    {"rule": "hi", "steps": [{"intent": "greet"}, {"action": "utter_greet"}]},
    {"rule": "start", "steps": [{"intent": "order_pizza"}, {"action": "pizza_form"}, {"active_loop": "pizza_form"}]},
    {"rule": "done", "condition": [{"active_loop": "pizza_form"}],
     "steps": [{"action": "pizza_form"}, {"active_loop": None}, {"action": "action_pay"}, {"action": "utter_ordered"}]},
]


def test_convert_domain_maps_intents_forms_slots_and_responses():
    result = convert_domain(RASA_DOMAIN, rules=RULES, examples={"order_pizza": "I want a pizza"},
                            retrieval_intents=["faq"])
    domain = Domain.model_validate(result.domain)  # valid for csbot's schema
    assert set(domain.intents) == {"greet", "faq", "order_pizza", "deny"}  # out_of_scope is the model's label
    assert domain.intents["greet"].chitchat and domain.intents["faq"].retrieve
    assert domain.intents["order_pizza"].required_slots == ["size", "address"]
    assert domain.slots["size"].regex == "(?:small|large)" and domain.slots["size"].entities == ["pizza_size"]
    assert domain.slots["size"].prompt == "Which size?"
    assert domain.slots["address"].prompt == "What is the address?"  # no utter_ask_address: a plain question
    greet = domain.templates["greet"][0]
    assert greet.buttons[0].title == "Pizza" and greet.buttons[0].payload == "I want a pizza"
    assert [v.text for v in domain.templates["order_pizza"]] == ["A {size} pizza is coming."]  # the submit response
    assert domain.templates["order_pizza"][0].image == "https://x/p.png"
    assert domain.templates["fallback"][0].text == "Pardon?"
    assert result.forms == {"pizza_form": "order_pizza"} and result.response_templates["utter_greet"] == "greet"
    notes = "\n".join(result.notes)
    for expected in ("action_pay", "custom mapping", "session_config", "utter_unused",
                     "channel-specific", "hungry", "/order_pizza", "use_entities"):
        assert expected in notes, expected


def test_a_rasa_domain_given_as_a_csbot_domain_says_convert_it(tmp_path):
    path = tmp_path / "domain.yml"
    path.write_text(yaml.safe_dump(RASA_DOMAIN))
    with pytest.raises(DomainError) as info:
        load_domain(path)
    assert "this looks like a Rasa domain file: convert it with `csbot init --from-rasa PROJECT`" in str(info.value)
    assert "validation" not in str(info.value)


def test_a_csbot_domain_is_not_taken_for_a_rasa_one(tmp_path):
    path = tmp_path / "domain.yml"
    path.write_text("version: 1\nintents:\n  greet: {chitchat: true}\ntemplates:\n  greet:\n  - text: hi\n")
    assert "greet" in load_domain(path).intents
    path.write_text("version: 1\nintents:\n  greet: {chitchat: true}\ntemplatez: {}\n")
    with pytest.raises(DomainError) as info:
        load_domain(path)
    assert "Rasa" not in str(info.value)
