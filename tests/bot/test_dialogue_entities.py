"""Built-in entities on the turn path: the dialogue manager runs the entity pipeline on every parse, so an amount
or a date in the first message fills its slot ("send 50 bucks to evan" asks only what is still missing), a
bare "fifty quid" answers the amount question, and a failing extractor costs the turn nothing.

A small transfer bot with a keyword understander (no model) and the real extractors.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from bot.dialogue import DialogueManager
from bot.domain.schema import Domain
from bot.messages import Message
from bot.sessions import MemorySessionStore
from bot.understanding import Understander
from nlu.config import NLUConfig
from nlu.extractors import EntityPipeline
from nlu.schema import IntentScore, ParsedEntity, ParseResult

DOMAIN = Domain.model_validate({
    "slots": {
        "amount": {"type": "amount", "prompt": "How much money do you want to transfer?"},
        "recipient": {"type": "text", "prompt": "Who should get it?"},
        "when": {"type": "date", "prompt": "On which day?"},
    },
    "intents": {
        "transfer": {"required_slots": ["amount", "recipient", "when"], "threshold": 0},
        "greet": {"chitchat": True, "threshold": 0},
    },
    "templates": {"transfer": [{"text": "Sending {amount} to {recipient} on {when}."}], "greet": [{"text": "Hi!"}]},
})


class TransferUnderstander(Understander):
    """``transfer`` for messages about sending money, ``greet`` for a greeting, else ``inform`` (a bare value);
    the recipient after "to" as a tagger entity."""

    async def parse(self, text: str) -> ParseResult:
        intent = ("transfer" if re.search(r"\b(send|transfer|pay)\b", text, re.I)
                  else "greet" if re.match(r"(hi|hello)\b", text, re.I) else "inform")
        entities = [ParsedEntity("recipient", m.group(1), m.start(1), m.end(1), 0.9)
                    for m in re.finditer(r"\bto (\w+)", text)]
        top = IntentScore(intent, 0.95)
        return ParseResult(text, top, [top], entities, False)

    @property
    def intents(self) -> list[str]:
        return ["transfer", "greet", "inform"]


def manager(pipeline: EntityPipeline | None) -> DialogueManager:
    return DialogueManager(DOMAIN, TransferUnderstander(), MemorySessionStore(), entities=pipeline)


@pytest.fixture(scope="module")
def pipeline() -> EntityPipeline:
    return EntityPipeline.from_config(NLUConfig())


def test_an_amount_in_the_first_message_fills_its_slot(pipeline):
    async def main():
        bot = manager(pipeline)
        first = await bot.handle(Message("s", "send 50 bucks to evan", "t"))
        assert first.details.slots == {"amount": "50 USD", "recipient": "evan"}
        assert first.text == "On which day?"  # not "How much money...?"
        done = await bot.handle(Message("s", "tomorrow", "t"))
        assert re.fullmatch(r"Sending 50 USD to evan on \d{4}-\d{2}-\d{2}\.", done.text), done.text
        without = manager(None)  # the tagger's entities alone: the amount is asked for
        assert (await without.handle(Message("s", "send 50 bucks to evan", "t"))).text.startswith("How much")

    asyncio.run(main())


def test_a_bare_amount_answers_the_amount_question(pipeline):
    async def main():
        bot = manager(pipeline)
        assert (await bot.handle(Message("s", "i want to transfer money to ann", "t"))).text.startswith("How much")
        answered = await bot.handle(Message("s", "fifty quid", "t"))
        assert answered.details.slots["amount"] == "50 GBP" and answered.text == "On which day?"

    asyncio.run(main())


def test_a_failing_extractor_costs_the_turn_nothing(pipeline, caplog):
    class Broken(EntityPipeline):
        def augment(self, parse, now):
            raise RuntimeError("extractor crashed")

    async def main():
        bot = manager(Broken.from_config(NLUConfig(builtin_entities=[])))
        reply = await bot.handle(Message("s", "send 50 bucks to evan", "t"))
        assert reply.source == "ask_slot" and reply.details.slots == {"recipient": "evan"}

    asyncio.run(main())
    assert "entity extractors failed" in caplog.text
