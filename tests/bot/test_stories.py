"""Conversation tests: loading story files, checking a reply against an expectation, playing a story.

Stories are played through ``test_dialogue.build``: the demo domain, the keyword understander and the table
retriever of tests/bot/test_dialogue.py (no NLU model).
"""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest
from test_dialogue import build

from bot.app import BotApp
from bot.messages import Button, OutgoingMessage, Reply
from bot.stories import Expect, Story, check, load_stories, run_story
from bot.turns import ReasonCode, TurnDecision, TurnDetails
from csbot.errors import DataError


def write(tmp_path: Path, text: str, name: str = "stories.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# -- loading ---------------------------------------------------------------------------------------


def test_load_stories_reads_steps_and_expectations(tmp_path):
    path = write(tmp_path, """
        stories:
          - name: track
            steps:
              - user: where is my order 48213?
                expect: {source: template, intent: track_order, slots: {order_id: 48213}, text: ["48213"]}
              - click: 2
    """)
    [story] = load_stories(path)
    assert story.name == "track" and len(story.steps) == 2
    first, second = story.steps
    assert first.user == "where is my order 48213?" and first.click is None
    assert first.expect.source == "template" and first.expect.slots == {"order_id": 48213} and first.expect.text == ["48213"]
    assert second.click == 2 and second.user is None and second.expect == Expect()


def test_a_folder_loads_every_story_file_in_name_order(tmp_path):
    write(tmp_path, "stories:\n  - {name: b, steps: [{user: hi}]}\n", "b.yaml")
    write(tmp_path, "stories:\n  - {name: a, steps: [{user: hi}]}\n", "a.yml")
    (tmp_path / "notes.txt").write_text("not a story")
    assert [s.name for s in load_stories(tmp_path)] == ["a", "b"]


def test_a_file_without_stories_is_refused(tmp_path):
    path = write(tmp_path, "story:\n  - {name: a, steps: []}\n")
    with pytest.raises(DataError, match="a story file holds 'stories:', a list") as info:
        load_stories(path)
    assert info.value.path == path
    with pytest.raises(DataError, match="'stories:'"):
        load_stories(write(tmp_path, "stories: {name: a}\n"))


@pytest.mark.parametrize("step", ["{user: hi, click: 1}", "{expect: {source: template}}"])
def test_a_step_needs_exactly_one_of_user_or_click(tmp_path, step):
    path = write(tmp_path, f"stories:\n  - name: greeting\n    steps: [{{user: hello}}, {step}]\n")
    with pytest.raises(DataError) as info:
        load_stories(path)
    message = str(info.value)
    assert str(path) in message and "'greeting'" in message and "steps.1" in message
    assert "exactly one of 'user' or 'click'" in message


def test_bad_steps_and_expectations_are_named(tmp_path):
    with pytest.raises(DataError, match=r"steps\.0\.expect\.colour"):
        load_stories(write(tmp_path, "stories:\n  - {name: a, steps: [{user: hi, expect: {colour: red}}]}\n"))
    with pytest.raises(DataError, match=r"steps\.0\.click"):
        load_stories(write(tmp_path, "stories:\n  - {name: a, steps: [{click: 0}]}\n"))
    with pytest.raises(DataError, match=r"'#2'"):
        load_stories(write(tmp_path, "stories:\n  - {name: a, steps: []}\n  - just a line\n"))
    with pytest.raises(DataError, match=r"steps\.0\.expect\.code"):  # not a ReasonCode
        load_stories(write(tmp_path, "stories:\n  - {name: a, steps: [{user: hi, expect: {code: felt_like_it}}]}\n"))


def test_bad_yaml_names_the_line(tmp_path):
    path = write(tmp_path, """\
        stories:
          - name: a
            steps:
              - user: hi
                expect: {source: template
              - user: bye
    """)
    with pytest.raises(DataError, match="invalid YAML") as info:
        load_stories(path)
    assert info.value.path == path and info.value.line == 6 and f"{path}:6:" in str(info.value)


def test_no_story_file(tmp_path):
    with pytest.raises(DataError, match="no story file here"):
        load_stories(tmp_path / "missing.yml")
    with pytest.raises(DataError, match="no story file here"):
        load_stories(tmp_path)  # an empty folder


def test_a_story_file_is_read_strictly(tmp_path):
    """The one strict YAML reader: a key given twice, non-UTF-8 text, no stories and hostile values are errors."""
    path = write(tmp_path, "stories:\n  - name: a\n    name: b\n    steps: [{user: hi}]\n")
    with pytest.raises(DataError, match="duplicate key 'name'") as info:
        load_stories(path)
    assert info.value.path == path and info.value.line == 3
    path = tmp_path / "latin.yml"
    path.write_bytes("stories:\n  - {name: caf\xe9, steps: [{user: hi}]}\n".encode("latin-1"))
    with pytest.raises(DataError, match="UTF-8") as info:
        load_stories(path)
    assert info.value.path == path and info.value.line == 2
    for text in ("stories: []\n", "", "stories:\n  - {name: a, steps: " + "[" * 100_000 + "]" * 100_000 + "}\n",
                 "stories:\n  - {name: a, steps: [{click: 1" + "0" * 5000 + "}]}\n"):
        path = write(tmp_path, text, "hostile.yml")
        with pytest.raises(DataError) as info:
            load_stories(path)
        assert info.value.path == path


# -- checking one reply ----------------------------------------------------------------------------

REPLY = Reply(
    [OutgoingMessage("Order 48213 is on its way.", [Button("Track", "track"), Button("Person", "person")]),
     OutgoingMessage("Anything else?")],
    "template",
    False,
    details=TurnDetails(intent="track_order", confidence=0.93, slots={"order_id": "48213"},
                        decision=TurnDecision("start", ReasonCode.INTENT_RECOGNISED, "start")),
)
SILENT = Reply([], "silent", True, details=TurnDetails(
    intent="greet", decision=TurnDecision("silent", ReasonCode.HANDED_OVER, "handed over")))


@pytest.mark.parametrize(("expect", "problems"), [
    (Expect(), []),
    (Expect(source="template"), []),
    (Expect(source="retrieve"), ["source: expected 'retrieve', got 'template' (intent_recognised: start)"]),
    (Expect(intent="track_order"), []),
    (Expect(intent="cancel_order"), ["intent: expected 'cancel_order', got 'track_order' (0.93)"]),
    (Expect(slots={"order_id": 48213}), []),
    (Expect(slots={"order_id": "51730"}), ["slot order_id: expected '51730', got '48213'"]),
    (Expect(slots={"email": "a@b.co"}), ["slot email: expected 'a@b.co', got None"]),
    (Expect(text=["48213", "ON ITS WAY", "way.*else"]), []),  # case-insensitive, across bubbles
    (Expect(text=["48213", "cancelled"]), ["text: expected to match /cancelled/"]),
    (Expect(not_text=["cancelled"]), []),
    (Expect(not_text=["on its"]), ["text: expected not to match /on its/"]),
    (Expect(buttons=["Person", "Track"]), []),
    (Expect(buttons=["Cancel"]), ["buttons: expected 'Cancel' among ['Track', 'Person']"]),
    (Expect(handoff=False), []),
    (Expect(handoff=True), ["handoff: expected True, got False"]),
    (Expect(silent=False), []),
    (Expect(silent=True), ["silent: expected True, got 2 messages"]),
    (Expect(code=ReasonCode.INTENT_RECOGNISED), []),
    (Expect(code="low_confidence"), ["code: expected 'low_confidence', got 'intent_recognised'"]),
    (Expect(source="fallback", handoff=True, text=["nope"]),
     ["source: expected 'fallback', got 'template' (intent_recognised: start)", "text: expected to match /nope/",
      "handoff: expected True, got False"]),
])
def test_check_each_expectation(expect, problems):
    assert check(expect, REPLY) == problems


def test_check_a_code_the_turn_went_through():
    decision = TurnDecision("retrieve", ReasonCode.LOW_CONFIDENCE, "low confidence 0.30")
    decision.because(ReasonCode.NO_CLOSE_ANSWER, "no past answer close enough")
    reply = Reply([OutgoingMessage("Sorry?")], "fallback", details=TurnDetails(decision=decision))
    assert check(Expect(code="low_confidence"), reply) == []  # an earlier reason of the turn counts
    assert check(Expect(code="no_close_answer"), reply) == []
    assert check(Expect(code="ambiguous"), reply) == [
        "code: expected 'ambiguous', got 'low_confidence' then 'no_close_answer'"]


def test_check_a_silent_reply():
    assert check(Expect(silent=True, handoff=True, source="silent"), SILENT) == []
    assert check(Expect(silent=False), SILENT) == ["silent: expected False, got 0 messages"]
    assert check(Expect(text=["."]), SILENT) == ["text: expected to match /./"]


# -- playing a story -------------------------------------------------------------------------------


THREE_STEPS = """
stories:
  - name: greet, click, answer
    steps:
      - user: hello
        expect: {source: template, intent: greet, buttons: [Track my order]}
      - click: 1
        expect: {source: ask_slot, intent: track_order, text: ["order number"]}
      - user: it's 48213
        expect: {source: template, slots: {order_id: 48213}, text: ["48213", "on its way"], not_text: ["sorry"]}
"""


def test_run_story_plays_a_three_step_story_with_a_click(tmp_path):
    [story] = load_stories(write(tmp_path, THREE_STEPS))

    async def main():
        manager = build()
        result = await run_story(BotApp.for_manager(manager), story)
        assert manager.nlu.calls == ["hello", "Track my order", "it's 48213"]  # the click sent the button's payload
        assert manager.store._data == {}  # the story's session is reset afterwards
        return result

    result = asyncio.run(main())
    assert result.name == "greet, click, answer" and result.passed and result.failures == []


def test_run_story_reports_the_steps_that_differ(tmp_path):
    [story] = load_stories(write(tmp_path, THREE_STEPS.replace("on its way", "delivered").replace("ask_slot", "template")))
    result = asyncio.run(run_story(BotApp.for_manager(build()), story))
    assert not result.passed and [f.step for f in result.failures] == [2, 3]
    click, answer = result.failures
    assert click.said == "Track my order" and click.problems[0].startswith("source: expected 'template', got 'ask_slot'")
    assert answer.said == "it's 48213" and answer.problems == ["text: expected to match /delivered/"]
    assert "48213" in answer.reply


def test_run_story_stops_at_a_click_on_a_missing_button():
    story = Story(name="no buttons", steps=[{"user": "how can I pay?"}, {"click": 1}, {"user": "hello"}])
    result = asyncio.run(run_story(BotApp.for_manager(build()), story))
    assert [(f.step, f.said, f.problems) for f in result.failures] == [
        (2, "(click 1)", ["the previous reply offered 0 buttons"])]
