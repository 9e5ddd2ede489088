"""Rasa stories, rules and test stories as csbot conversation tests (bot/rasa/stories.py), and the story
loader's hint on a Rasa file."""

from __future__ import annotations

import re

import pytest

from bot.rasa import convert_domain, convert_stories
from bot.rasa.stories import strip_markup, text_pattern
from bot.stories import load_stories
from csbot.errors import DataError

DOMAIN = {
    "intents": ["greet", "transfer", "inform", "faq", "deny"],
    "slots": {"amount": {"type": "float", "mappings": [{"type": "from_entity", "entity": "amount"}]},
              "to": {"type": "text", "mappings": [{"type": "from_entity", "entity": "person"}]}},
    "forms": {"transfer_form": {"required_slots": ["amount", "to"]}},
    "responses": {"utter_greet": [{"text": "Hello {name}!"}, {"text": "Hi."}], "utter_ask_amount": [{"text": "How much?"}],
                  "utter_ask_to": [{"text": "To whom?"}], "utter_done": [{"text": "Sent {amount} to {to}."}]},
}
RULES = [
    {"rule": "greet", "steps": [{"intent": "greet"}, {"action": "utter_greet"}]},
    {"rule": "form", "steps": [{"intent": "transfer"}, {"action": "transfer_form"}, {"active_loop": "transfer_form"}]},
    {"rule": "submit", "condition": [{"active_loop": "transfer_form"}],
     "steps": [{"action": "transfer_form"}, {"active_loop": None}, {"action": "utter_done"}]},
]


def _conversion():
    return convert_domain(DOMAIN, rules=RULES, retrieval_intents=["faq"])


def _example_for(intent, names):
    return {"greet": ("hello", {}, "greet")}.get(intent) if not names else None


def test_text_pattern_matches_every_variant_with_any_values():
    pattern = text_pattern(["Hello {name}!", "Hi."])
    assert re.search(pattern, "Hello Ana!") and re.search(pattern, "Hi.") and not re.search(pattern, "Hey")
    assert text_pattern(["{answer}"]) is None


def test_strip_markup_keeps_the_text_and_mapped_values():
    assert strip_markup('send [50](amount) to [mum]{"entity": "person", "value": "Mother"}') == (
        "send 50 to mum", {"amount": "50", "person": "Mother"})


def test_a_test_story_with_a_form_and_a_question_becomes_steps():
    story = {"story": "transfer", "steps": [
        {"user": "send [20](amount)", "intent": "transfer"}, {"action": "transfer_form"},
        {"active_loop": "transfer_form"},
        {"user": "what does it cost", "intent": "faq/ask_cost"}, {"action": "utter_faq/ask_cost"},
        {"action": "transfer_form"},
        {"user": "[Bo](person)", "intent": "inform"}, {"action": "transfer_form"}, {"active_loop": None},
        {"action": "utter_done"}]}
    result = convert_stories([story], _conversion(), {"utter_faq/ask_cost": "It is free."}, _example_for)
    assert result.left_out == 0
    steps = result.stories[0]["steps"]
    assert steps[0] == {"user": "send 20", "expect": {"intent": "transfer", "slots": {"amount": "20"},
                                                      "source": "ask_slot", "text": [r"To\ whom\?"]}}
    assert steps[1]["expect"]["text"] == [r"It\ is\ free\.", r"To\ whom\?"]  # answered, then asked again
    assert steps[2]["expect"] == {"slots": {"to": "Bo"}, "source": "template", "text": [r"Sent.*?to.*?\."]}


def test_what_does_not_map_is_left_out_with_a_note():
    stories = [
        {"story": "stop", "steps": [{"user": "send money", "intent": "transfer"}, {"action": "transfer_form"},
                                    {"active_loop": "transfer_form"}, {"user": "no", "intent": "deny"},
                                    {"action": "utter_ask_continue"}]},
        {"story": "joined", "steps": [{"checkpoint": "x"}, {"intent": "greet"}, {"action": "utter_greet"}]},
        {"story": "custom", "steps": [{"intent": "greet"}, {"action": "action_log"}, {"action": "utter_greet"}]},
    ]
    result = convert_stories(stories, _conversion(), {}, _example_for)
    assert result.left_out == 2 and [s["name"] for s in result.stories] == ["custom"]
    assert result.stories[0]["steps"][0]["user"] == "hello"  # a training story's turn: the intent's example
    notes = "\n".join(result.notes)
    assert "'stop' left out" in notes and "'joined' left out: checkpoints" in notes and "action_log" in notes
    rules = convert_stories(RULES, _conversion(), {}, _example_for, kind="rule")
    assert "rule 'submit' left out: rules with a condition" in "\n".join(rules.notes)


@pytest.mark.parametrize("text", [
    "version: '3.1'\nstories:\n- story: s\n  steps:\n  - intent: greet\n  - action: utter_greet\n",
    "stories:\n- story: s\n  steps:\n  - user: hi\n    intent: greet\n",
    "rules:\n- rule: r\n  steps:\n  - intent: greet\n",
])
def test_a_rasa_stories_file_says_convert_it(tmp_path, text):
    path = tmp_path / "stories.yml"
    path.write_text(text)
    with pytest.raises(DataError) as info:
        load_stories(path)
    assert "this looks like a Rasa stories file: convert it with `csbot init --from-rasa PROJECT`" in str(info.value)


def test_a_csbot_story_file_still_loads(tmp_path):
    path = tmp_path / "s.yml"
    path.write_text("stories:\n- name: hi\n  steps:\n  - user: hi\n    expect: {intent: greet}\n")
    assert load_stories(path)[0].name == "hi"
