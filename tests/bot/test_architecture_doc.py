"""The worked examples of docs/architecture.md run as written: a channel, a session store, a policy.

Each ``python example=NAME`` block is executed as the module ``mybot.<name>s`` would be (the doc tells the
reader to put the class there), so the dotted paths the doc shows resolve for real.
"""

from __future__ import annotations

import ast
import asyncio
import re
import sys
import types

import pytest
from conftest import REPO
from test_dialogue import KeywordUnderstander

from bot.app import BotApp
from bot.dialogue import DialogueManager
from bot.domain import load_domain
from bot.messages import Message
from bot.sessions import MemorySessionStore, create_store
from bot.turns import ReasonCode
from csbot.settings import load_config

DOC = REPO / "docs" / "architecture.md"
DEMO_DOMAIN = REPO / "configs" / "demo" / "domain.yml"


def examples() -> dict[str, str]:
    """Every fenced block tagged ``example=NAME`` in the doc, by name."""
    found = re.findall(r"```\w+ example=([\w-]+)\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    return dict(found)


@pytest.fixture
def mybot(monkeypatch):
    """An empty ``mybot`` package in ``sys.modules``; ``load(name, code)`` runs code as ``mybot.<name>``."""
    package = types.ModuleType("mybot")
    package.__path__ = []
    monkeypatch.setitem(sys.modules, "mybot", package)

    def load(name: str, code: str) -> types.ModuleType:
        module = types.ModuleType(f"mybot.{name}")
        monkeypatch.setitem(sys.modules, module.__name__, module)
        exec(compile(code, f"{DOC}:{name}", "exec"), module.__dict__)
        setattr(package, name, module)
        return module

    return load


def make_app(store=None, domain=None) -> BotApp:
    manager = DialogueManager(domain or load_domain(DEMO_DOMAIN), KeywordUnderstander(), store or MemorySessionStore())
    return BotApp.for_manager(manager)


def test_the_doc_has_the_three_examples():
    assert {"channel", "store", "store-config", "policy"} <= set(examples())


def test_the_channel_example_talks_to_a_started_app():
    code = compile(examples()["channel"], f"{DOC}:channel", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)

    async def main() -> dict:
        app = make_app()
        namespace = {"app": app}
        async with app:
            result = eval(code, namespace)
            if asyncio.iscoroutine(result):
                await result
        return namespace

    namespace = asyncio.run(main())
    sent = namespace["channel"].output.sent
    assert {recipient for recipient, _ in sent} == {"ann", "bob"}
    assert any(recipient == "bob" and "48213" in text for recipient, text in sent)  # bob's order, to bob


def test_the_store_example_is_chosen_by_the_config_and_keeps_a_conversation(mybot, tmp_path):
    module = mybot("stores", examples()["store"])
    config_file = tmp_path / "config.yml"
    config_file.write_text(examples()["store-config"])
    store = create_store(load_config(config_file).sessions)
    assert isinstance(store, module.DictStore)

    async def main() -> list:
        app = make_app(store=store)
        async with app:
            first = await app.manager.handle(Message("s1", "where is my order", "test"))
            second = await app.manager.handle(Message("s1", "48213", "test"))
        return [first, second]

    first, second = asyncio.run(main())
    assert first.details.requested_slot == "order_id"  # the form's question...
    assert second.details.completed == "track_order"  # ...answered in the next turn, from the store
    assert asyncio.run(store.load("s1")).turn_count == 2


def test_the_policy_example_is_chosen_by_the_domain(mybot, tmp_path):
    mybot("policies", examples()["policy"])
    text = DEMO_DOMAIN.read_text(encoding="utf-8")
    domain_file = tmp_path / "domain.yml"
    domain_file.write_text(text.replace("policy: rules\n", "policy: mybot.policies:RefundsToPeople\n", 1))
    domain = load_domain(domain_file)
    assert domain.policy == "mybot.policies:RefundsToPeople"

    async def main():
        app = make_app(domain=domain)
        async with app:
            refund = await app.manager.handle(Message("s1", "i want a refund", "test"))
            other = await app.manager.handle(Message("s2", "where is my order 48213", "test"))
        return refund, other

    refund, other = asyncio.run(main())
    assert refund.handoff and refund.details.decision.code == ReasonCode.ASKED_FOR_PERSON
    assert not other.handoff and other.details.completed == "track_order"
