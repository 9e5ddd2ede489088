"""The dialogue manager under hostile input (issue 12): every message gets a reply or an apology, in
bounded time, whatever its bytes, and one bad message or stored state costs nothing beyond its own turn.

Generated: messages of any code point (lone surrogates and control characters included), random bytes read
as a terminal in the C locale would (``surrogateescape``), format strings and pieces of them, long texts
(up to 60,000 characters of what is worst for the slot patterns), sent into every kind of conversation the
demo domain has (a slot question, a confirmation, a clarification, a hand-over); and stored session states
of any shape (random bytes, any JSON, huge and nested values in every field of a well-formed state).

The contract checked for each turn: ``handle`` returns a reply within 10 s and raises nothing; the reply
has a message (or the bot is silent because a person has the conversation); it is not an internal failure
(``turn_failed``) nor evaluated from the customer's text; every text in it can be sent as UTF-8; what is
stored afterwards reads back; and a session stored before (a bystander) is byte for byte unchanged.

No model is loaded: the keyword understander and table retriever of tests/bot/test_dialogue.py stand in.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.batching import MicroBatcher
from bot.dialogue import DialogueManager
from bot.domain import load_domain
from bot.domain.schema import SlotSpec
from bot.messages import Message, Reply
from bot.render import fill
from bot.sessions import MemorySessionStore
from bot.sessions.base import CorruptStateError, decode_state
from bot.sessions.state import SessionState
from bot.slots import from_bare_reply, validate
from bot.turns import ReasonCode
from tests.bot.test_dialogue import DOMAIN_FILE, BatchedKeywordUnderstander, KeywordUnderstander, TableRetriever

pytestmark = pytest.mark.properties

DOMAIN = load_domain(DOMAIN_FILE)
#: The demo domain with no ``invalid`` text for the e-mail and order slots: the reason is said on its own.
PLAIN_DOMAIN = load_domain(DOMAIN_FILE)
PLAIN_DOMAIN.slots["email"].invalid = PLAIN_DOMAIN.slots["order_id"].invalid = None
DOMAINS = {"demo": DOMAIN, "demo without invalid texts": PLAIN_DOMAIN}
domains = st.sampled_from(sorted(DOMAINS))  # by name, so a failing example reads well
TURN_SECONDS = 10  # far above what a turn takes (milliseconds): reaching it means a hang

# -- what a customer may send ----------------------------------------------------------------------

any_character = st.one_of(
    st.characters(exclude_categories=()),  # any code point
    st.characters(categories=["Cs"]),      # lone surrogates, often
    st.characters(categories=["Cc"]),      # control characters (NUL, ESC, ...), often
)
FORMAT_PIECES = ["{", "}", "{0}", "{}", "{reason}", "{slot}", "{order_id}", "{slot.__class__.__mro__}",
                 "{order_id!r:>999999999}", "{x:{y}}", "%s", "%(x)s", "{{", "}}", "$x", "\\N{BULLET}"]
WORDS = ["48213", "51730", "99999", "jane.doe@example.com", "a@b", "yes", "no", "1", "2", "²", "١", "next friday",
         "Keizersgracht 12, Amsterdam", "track my order", "person", "cancel", "forget it", "hello", " ", "\n"]
format_strings = st.lists(st.sampled_from(FORMAT_PIECES + WORDS), min_size=1, max_size=8).map("".join)
decoded_bytes = st.binary(max_size=120).map(lambda raw: raw.decode("utf-8", "surrogateescape"))
long_texts = st.builds(lambda piece, count: piece * count,
                       st.sampled_from(["a", "1 ", "a@", "a.", "{", "\udcff", "my ", "1", "x", "1 (", "{0}"]),
                       st.integers(500, 60_000))
messages = st.one_of(st.text(any_character, max_size=80), decoded_bytes, format_strings, long_texts,
                     st.sampled_from(WORDS))

#: Openings that put the conversation where a hostile message hurts most.
OPENINGS = [
    [],
    ["track my order"],                                         # a slot question (order number)
    ["I forgot my password"],                                   # a slot question (e-mail)
    ["change the address of 51730"],                            # a slot question (the address regex)
    ["do you have something in stock?"],                        # a slot question (free text, echoed back)
    ["cancel order 48213"],                                     # a confirmation
    ["change the delivery address of order 48213", "Keizersgracht 12, Amsterdam"],  # a confirmation
    ["tell me about gift wrap"],                                # a clarification
    ["track my order", "how can I pay?"],                       # a question during a form
    ["I want to talk to a person"],                             # handed over: the bot stays silent
]


def manager_on(store: MemorySessionStore, domain: str = "demo", batched: bool = False) -> DialogueManager:
    """The demo bot; ``batched``: its parses go through a micro-batcher whose batch function, like the
    tokenizer, refuses a whole batch for one text it cannot encode."""
    understander = BatchedKeywordUnderstander(max_wait_ms=2) if batched else KeywordUnderstander()
    return DialogueManager(DOMAINS[domain], understander, store, TableRetriever())


async def turn(manager: DialogueManager, session_id: str, text: str) -> Reply:
    started = time.perf_counter()
    reply = await asyncio.wait_for(manager.handle(Message(session_id, text, "test")), TURN_SECONDS)
    # wait_for cannot interrupt a pattern that holds the event loop: the time taken says whether it did
    assert time.perf_counter() - started < TURN_SECONDS, f"the turn held the event loop for {TURN_SECONDS} s or more"
    check_reply(reply, text)
    return reply


def check_reply(reply: Reply, text: str) -> None:
    """The contract every reply keeps, whatever the message was."""
    assert isinstance(reply, Reply)
    code = reply.details.decision.code
    assert code is not ReasonCode.TURN_FAILED, reply.details.decision  # an internal error: a bug
    assert code is not ReasonCode.STORE_UNAVAILABLE  # the memory store is always there
    assert reply.messages or reply.source == "silent", reply
    for message in reply.messages:
        message.text.encode("utf-8")  # no lone surrogate gets out
        for button in message.buttons:
            button.title.encode("utf-8"), button.payload.encode("utf-8")
    json.dumps({"reply": reply.to_dict(), "details": reply.details.to_dict()}, ensure_ascii=False).encode("utf-8")
    assert "<class" not in reply.text or "<class" in text  # nothing evaluated from the customer's text
    assert len(reply.text) <= 5_000  # a long message is not echoed back whole


async def bystander(store: MemorySessionStore, manager: DialogueManager) -> str:
    """A conversation in progress before the hostile turns; its stored JSON must not change."""
    await turn(manager, "bystander", "track my order")
    return store._data["bystander"][0]


def stored_state_reads_back(store: MemorySessionStore, session_id: str) -> None:
    raw = store._data[session_id][0]
    raw.encode("utf-8")
    decode_state(session_id, raw, "test")


# -- the manager -----------------------------------------------------------------------------------


@given(domain=domains, opening=st.sampled_from(OPENINGS), texts=st.lists(messages, min_size=1, max_size=4))
def test_any_messages_in_any_conversation_get_a_reply_and_touch_no_other_session(domain, opening, texts):
    async def main():
        store = MemorySessionStore()
        manager = manager_on(store, domain)
        before = await bystander(store, manager)
        for text in opening:
            await turn(manager, "hostile", text)
        for text in texts:
            await turn(manager, "hostile", text)
        stored_state_reads_back(store, "hostile")
        assert store._data["bystander"][0] == before

    asyncio.run(main())


@given(domain=domains, texts=st.lists(messages, min_size=2, max_size=6))
def test_concurrent_hostile_turns_each_get_their_reply(domain, texts):
    """Many conversations at once, each in the middle of a form, their parses batched together: no message
    costs another one's reply."""
    async def main():
        store = MemorySessionStore()
        manager = manager_on(store, domain, batched=True)
        before = await bystander(store, manager)
        sessions = [f"c{i}" for i in range(len(texts))]
        await asyncio.gather(*(turn(manager, session, "track my order") for session in sessions))
        replies = await asyncio.gather(*(turn(manager, session, text)
                                         for session, text in zip(sessions, texts, strict=True)))
        # every text is made safe before the model, so the stand-in (which refuses what it cannot encode) never fails
        assert all(reply.details.decision.code is not ReasonCode.NLU_FAILED for reply in replies)
        for session in sessions:
            stored_state_reads_back(store, session)
        assert store._data["bystander"][0] == before

    asyncio.run(main())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(any_character, max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=25,
)
WELL_FORMED = {
    "turn_count": 3, "active_intent": "change_address", "slots": {"order_id": "48213"}, "requested_slot": "address",
    "consecutive_failures": 1, "handoff": False,
    "paused": [{"intent": "track_order", "slots": {}, "requested_slot": None}],
    "pending": {"kind": "clarify", "choices": [{"payload": "p", "question": "q", "answer": "a", "id": "i"}]},
    "variants": {"greet": 0}, "history": [{"user": "hi", "bot": "Hello!", "source": "template", "intent": "greet"}],
    "channel": "test", "recipient_id": "hostile", "created_at": 1.0, "updated_at": 2.0,
}
DOMAIN_NAMES = [*DOMAIN.intents, *DOMAIN.slots, *DOMAIN.templates, "gone_intent", "", "0"]


def _with(field: str, value: object) -> dict:
    return {**WELL_FORMED, field: value}


well_formed_but_odd = st.builds(
    _with, st.sampled_from(sorted(WELL_FORMED)),
    st.one_of(json_values, st.sampled_from(DOMAIN_NAMES), st.integers(-(10**30), 10**30),
              st.dictionaries(st.sampled_from(DOMAIN_NAMES), json_values, max_size=3),
              st.lists(st.dictionaries(st.sampled_from(["intent", "slots", "requested_slot", "user", "bot", "kind",
                                                        "choices", "completed"]),
                                       st.one_of(st.sampled_from(DOMAIN_NAMES), json_values), max_size=5),
                       max_size=3)),
)
stored_states = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda value: json.dumps(value, ensure_ascii=False)),
    well_formed_but_odd.map(lambda state: json.dumps(state, ensure_ascii=False)),
    st.integers(1, 50_000).map(lambda depth: "[" * depth + "]" * depth),
)


@given(raw=stored_states, text=st.one_of(st.sampled_from(WORDS), messages))
def test_any_stored_state_gives_a_reply_and_leaves_a_state_that_reads_back(raw, text):
    """Whatever was stored for a session (another version's, a tool's, a bit flip's), its next turn is
    answered (the state used as it is, or started over) and leaves a state that reads back."""
    async def main():
        store = MemorySessionStore()
        manager = manager_on(store)
        before = await bystander(store, manager)
        store._data["hostile"] = (raw, float("inf"))
        await turn(manager, "hostile", text)
        stored_state_reads_back(store, "hostile")
        await turn(manager, "hostile", "hello")  # and the conversation goes on
        assert store._data["bystander"][0] == before

    asyncio.run(main())


# -- the parts the turn relies on ------------------------------------------------------------------


@given(raw=stored_states)
def test_decoding_a_stored_state_gives_a_state_or_reports_it_corrupt(raw):
    try:
        state = decode_state("s", raw, "test")
    except CorruptStateError:
        return
    assert isinstance(state, SessionState) and state.session_id == "s"
    assert SessionState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


SPECS = [SlotSpec(type=kind, prompt="?") for kind in ("text", "number", "email", "date", "order_number", "phone")]
SPECS.append(DOMAIN.slots["address"])


@given(spec=st.sampled_from(SPECS), text=messages)
def test_slot_validation_is_total_and_looks_at_no_more_than_the_cap(spec, text):
    check = validate("slot", spec, from_bare_reply(spec, text))
    assert check.ok or check.problem
    if check.ok:
        assert len(str(check.value)) <= spec.max_length or spec.type == "number"
    assert check.too_long == (not check.ok and "too long" in check.problem)


@given(values=st.dictionaries(st.sampled_from(["a", "b", "reason"]), st.one_of(messages, json_values), min_size=3))
def test_filled_values_appear_as_they_are(values):
    assert fill("<{a}|{b}|{reason!s}>", values) == f"<{values['a']}|{values['b']}|{values['reason']}>"


@given(items=st.lists(st.one_of(st.integers(0, 9), st.just("bad")), min_size=1, max_size=12),
       max_batch=st.integers(1, 8))
def test_only_the_bad_items_of_a_batch_fail(items, max_batch):
    def batch(values: list) -> list[int]:
        if "bad" in values:
            raise ValueError("bad item")
        return [v * 2 for v in values]

    batcher: MicroBatcher = MicroBatcher(batch, max_batch=max_batch, max_wait_ms=1)

    async def main():
        return await asyncio.gather(*(batcher.submit(item) for item in items), return_exceptions=True)

    for item, result in zip(items, asyncio.run(main()), strict=True):
        if item == "bad":
            assert isinstance(result, ValueError)
        else:
            assert result == item * 2
