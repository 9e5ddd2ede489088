"""``transcripts.mask``: e-mail addresses and phone numbers are masked in the written log (the customer's text,
the entities with their offsets, the reply), while the reply the customer gets keeps them."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from bot.dialogue import DialogueManager
from bot.domain.schema import Domain
from bot.messages import Message
from bot.sessions import MemorySessionStore
from bot.transcripts.config import TranscriptsConfig
from bot.transcripts.factory import create_sink
from bot.transcripts.masking import Masker
from bot.understanding import Understander
from csbot.errors import ConfigError
from csbot.settings import load_config
from nlu.schema import IntentScore, ParsedEntity, ParseResult

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"\+49 30 1234567")
TEXT = "please write to jane.doe@example.com or call +49 30 1234567, order 48213"

DOMAIN = Domain.model_validate({
    "slots": {"email": {"type": "email", "prompt": "Your e-mail?"}},
    "intents": {"contact": {"required_slots": ["email"]}},
    "templates": {"contact": [{"text": "We'll write to {email} today (or call +49 30 1234567 back)."}]},
})


class ContactUnderstander(Understander):
    """Every message is the ``contact`` intent; e-mail addresses are its entities."""

    async def parse(self, text: str) -> ParseResult:
        entities = [ParsedEntity("email", m.group(), m.start(), m.end(), 0.99) for m in EMAIL.finditer(text)]
        top = IntentScore("contact", 0.97)
        return ParseResult(text, top, [top], entities, False)

    @property
    def version(self) -> str:
        return "test"

    @property
    def intents(self) -> list[str]:
        return ["contact"]


def _chat(tmp_path, mask, background=True):
    path = tmp_path / "logs" / "turns.jsonl"
    config = TranscriptsConfig(sinks=["jsonl"], mask=mask, background=background)

    async def main():
        sink = create_sink(config, path)
        await sink.start()
        manager = DialogueManager(DOMAIN, ContactUnderstander(), MemorySessionStore(), transcripts=sink)
        reply = await manager.handle(Message("s1", TEXT, "test"))
        await sink.close()
        return reply

    reply = asyncio.run(main())
    return reply, path.read_text(encoding="utf-8")


@pytest.mark.parametrize("background", [True, False])
def test_emails_and_phones_are_masked_in_the_log_not_in_the_reply(tmp_path, background):
    reply, written = _chat(tmp_path, ["email", "phone"], background)
    assert "jane.doe@example.com" in reply.text and "+49 30 1234567" in reply.text  # the customer's reply as sent
    assert "jane.doe" not in written and "1234567" not in written
    turn = json.loads(written)
    assert turn["user_text"] == "please write to [email] or call [phone], order 48213"
    entity = turn["parse"]["entities"][0]
    assert entity["value"] == "[email]" == turn["user_text"][entity["start"]:entity["end"]]
    assert turn["reply"]["messages"][0]["text"] == "We'll write to [email] today (or call [phone] back)."


def test_without_mask_the_log_keeps_them(tmp_path):
    _, written = _chat(tmp_path, [])
    turn = json.loads(written)
    assert turn["user_text"] == TEXT and "jane.doe@example.com" in turn["reply"]["messages"][0]["text"]


def test_entity_offsets_move_with_the_masks():
    masker = Masker(["email", "phone"])
    original = "a@b.co then 0176 5551234 then 48213 and x@y.org"
    text, move = masker.text_and_offsets(original)
    assert text == "[email] then [phone] then 48213 and [email]"
    start = original.index("48213")
    assert text[move(start):move(start + 5, is_end=True)] == "48213"
    assert text[move(start - 2):move(start, is_end=True)] == "n "
    assert text[move(0):move(6, is_end=True)] == "[email]"
    assert masker.text("on 2024-05-12 or 12/05/2024, order 48213") == "on 2024-05-12 or 12/05/2024, order 48213"


def test_the_config_takes_only_known_kinds(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("transcripts:\n  mask: [email, phone]\n", encoding="utf-8")
    assert load_config(config).transcripts.mask == ["email", "phone"]
    config.write_text("transcripts:\n  mask: [passport]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"transcripts\.mask"):
        load_config(config)
