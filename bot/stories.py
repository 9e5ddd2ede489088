"""Conversation tests: scripted customer lines and what the bot must answer, played against the real bot.

A story file (YAML)::

    stories:
      - name: track an order given up front
        steps:
          - user: where is my order 48213?
            expect:
              source: template          # the reply's decision source
              code: intent_recognised   # a reason code the turn went through (bot/turns.py: ReasonCode)
              intent: track_order       # the parsed intent
              slots: {order_id: "48213"}
              text: ["48213", "on its way"]   # regular expressions the reply text must all match
          - click: 1                    # the first button of the previous reply
            expect: {source: retrieve}

``expect`` keys: ``source``, ``code`` (a :class:`~bot.turns.ReasonCode` value), ``intent``, ``slots`` (a subset), ``text`` (regexes, case-insensitive),
``not_text``, ``buttons`` (titles that must be offered), ``handoff`` (bool), ``silent`` (no message).
``source``, ``code``, ``intent`` and ``slots`` are read from the reply's :class:`~bot.turns.TurnDetails`; a step
that fails on its source names the turn's decision (its reason code and note) to show why.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.channels.base import CollectingOutputChannel, OutputChannel, SentMessage
from bot.messages import Message, Reply
from bot.rasa.detect import looks_like_rasa, rasa_hint
from bot.turns import ReasonCode
from csbot.config import read_yaml
from csbot.errors import DataError


class Expect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str | None = None
    code: ReasonCode | None = None
    intent: str | None = None
    slots: dict[str, Any] | None = None
    text: list[str] = Field(default_factory=list)
    not_text: list[str] = Field(default_factory=list)
    buttons: list[str] = Field(default_factory=list)
    handoff: bool | None = None
    silent: bool | None = None


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str | None = None
    click: int | None = Field(None, ge=1)
    expect: Expect = Expect()

    @model_validator(mode="after")
    def one_input(self) -> Step:
        if (self.user is None) == (self.click is None):
            raise ValueError("a step has exactly one of 'user' or 'click'")
        return self


class Story(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    steps: list[Step]


def load_stories(path: str | Path) -> list[Story]:
    """Every story in a file, or in every ``*.yml``/``*.yaml`` file of a folder; errors name file and story.

    Each file is read by :func:`csbot.config.read_yaml` (UTF-8 only, no key given twice); a file without
    stories is an error.
    """
    path = Path(path)
    files = sorted([*path.glob("*.yml"), *path.glob("*.yaml")]) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise DataError("no story file here", path)
    stories = []
    for file in files:
        data = read_yaml(file, DataError, what="story file")
        if looks_like_rasa(data, "stories"):
            raise DataError(rasa_hint("stories"), file)
        items = data.get("stories") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise DataError("a story file holds 'stories:', a list", file)
        if not items:
            raise DataError("the file holds no stories ('stories:' is an empty list)", file)
        for index, item in enumerate(items):
            try:
                stories.append(Story(**item))
            except (ValidationError, TypeError) as exc:
                name = item.get("name", f"#{index + 1}") if isinstance(item, dict) else f"#{index + 1}"
                raise DataError(f"story {name!r}: {exc}".splitlines()[0] + f" ({_first_problem(exc)})", file) from exc
    return stories


def _first_problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    return str(exc)


@dataclass
class StepFailure:
    """One step whose reply differed from the expectation: what was expected and what came."""

    step: int
    said: str
    problems: list[str]
    reply: str


@dataclass
class StoryResult:
    name: str
    failures: list[StepFailure] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def check(expect: Expect, reply: Reply) -> list[str]:
    """The differences between what a step expects and the reply, one line each (empty: it passed)."""
    problems = []
    details = reply.details
    if expect.source is not None and reply.source != expect.source:
        problems.append(f"source: expected {expect.source!r}, got {reply.source!r} ({details.decision})")
    if expect.code is not None and expect.code not in details.decision.codes:
        problems.append(f"code: expected {expect.code.value!r}, got "
                        f"{' then '.join(repr(c.value) for c in details.decision.codes)}")
    if expect.intent is not None and details.intent != expect.intent:
        problems.append(f"intent: expected {expect.intent!r}, got {details.intent!r} ({details.confidence})")
    for key, value in (expect.slots or {}).items():
        got = details.slots.get(key)
        if str(got) != str(value):
            problems.append(f"slot {key}: expected {value!r}, got {got!r}")
    text = reply.text
    for pattern in expect.text:
        if re.search(pattern, text, re.IGNORECASE | re.DOTALL) is None:
            problems.append(f"text: expected to match /{pattern}/")
    for pattern in expect.not_text:
        if re.search(pattern, text, re.IGNORECASE | re.DOTALL) is not None:
            problems.append(f"text: expected not to match /{pattern}/")
    titles = [b.title for m in reply.messages for b in m.buttons]
    for title in expect.buttons:
        if title not in titles:
            problems.append(f"buttons: expected {title!r} among {titles}")
    if expect.handoff is not None and reply.handoff != expect.handoff:
        problems.append(f"handoff: expected {expect.handoff}, got {reply.handoff}")
    if expect.silent is not None and (not reply.messages) != expect.silent:
        problems.append(f"silent: expected {expect.silent}, got {len(reply.messages)} messages")
    return problems


class Conversations(Protocol):
    """What stories are played against: :class:`bot.app.BotApp` (its ``handle`` is the channels' callback)."""

    async def handle(self, message: Message, output: OutputChannel) -> Reply: ...

    async def reset(self, session_id: str) -> None: ...


async def run_story(bot: Conversations, story: Story) -> StoryResult:
    """Play a story in a fresh session through a collecting channel and compare every reply.

    Clicks pick from the buttons the channel received; the reply's details give source, intent and slots.
    """
    session = f"story-{uuid.uuid4().hex[:10]}"
    output = CollectingOutputChannel()
    result = StoryResult(story.name)
    shown: list[SentMessage] = []
    for number, step in enumerate(story.steps, start=1):
        if step.click is not None:
            buttons = [b for m in shown for b in m.buttons]
            if step.click > len(buttons):
                result.failures.append(StepFailure(number, f"(click {step.click})",
                                                   [f"the previous reply offered {len(buttons)} buttons"], ""))
                break
            said = buttons[step.click - 1].payload
        else:
            said = step.user or ""
        reply = await bot.handle(Message(session, said, "test"), output)
        shown = output.take()
        problems = check(step.expect, reply)
        if [m.text for m in shown] != [m.text for m in reply.messages]:
            problems.append("the channel received other messages than the reply holds")
        if problems:
            result.failures.append(StepFailure(number, said, problems, "\n".join(m.text for m in shown)))
    await bot.reset(session)
    return result
