"""Conversations that keep the thread: a follow-up that refers back takes the last request's values, a form left
in words ("wait no, never mind", "no thanks") is dropped and never comes back, stop-like intents leave a form by
what the domain declares (Rasa's ``deny`` too), and an out-of-scope question during a form is answered and the
slot asked again without counting as an invalid value; an ``out_of_scope`` template is used when the domain has one.

The demo domain with the keyword understander of test_dialogue.py.
"""

from __future__ import annotations

import asyncio

from test_dialogue import DOMAIN_FILE, build, lines, say

from bot.domain import load_domain
from bot.domain.schema import VariantSpec
from bot.turns import ReasonCode

ORDER_PROMPT_WORDS = "order number"


def test_cancel_it_after_tracking_takes_the_order_just_tracked():
    async def main():
        manager = build()
        tracked = await say(manager, "where is order 48213?")
        assert tracked.details.completed == "track_order" and tracked.details.slots == {"order_id": "48213"}
        follow_up = await say(manager, "actually can you cancel it?")
        assert ReasonCode.SLOT_CARRIED_OVER in follow_up.details.decision.codes
        assert follow_up.text == "Do you want me to cancel order 48213?"  # no order number asked again

    asyncio.run(main())


def test_a_new_value_wins_over_the_carried_one_and_another_one_is_asked_for():
    async def main():
        manager = build()
        await say(manager, "where is order 48213?")
        other = await say(manager, "cancel it, order 51730 I mean")
        assert other.text == "Do you want me to cancel order 51730?"
        assert ReasonCode.SLOT_CARRIED_OVER not in other.details.decision.codes
        manager = build()
        await say(manager, "where is order 48213?")
        another = await say(manager, "and cancel the other one")
        assert ORDER_PROMPT_WORDS in another.text.lower() and another.source == "ask_slot"

    asyncio.run(main())


def test_nothing_is_carried_without_a_reference_or_after_too_many_turns():
    async def main():
        manager = build()
        await say(manager, "where is order 48213?")
        plain = await say(manager, "cancel my order")
        assert ORDER_PROMPT_WORDS in plain.text.lower()
        manager = build()
        await say(manager, "where is order 48213?")
        for _ in range(3):
            await say(manager, "hello")
        late = await say(manager, "cancel it")
        assert ORDER_PROMPT_WORDS in late.text.lower()

    asyncio.run(main())


def test_a_form_left_in_words_is_dropped_and_never_resumed():
    async def main():
        manager = build()
        await say(manager, "cancel my order")  # asks for the order number
        await say(manager, "I want to change my address")  # a topic switch: cancel_order put aside
        left = await say(manager, "wait no, nevermind")
        assert left.details.decision.code in (ReasonCode.FORM_LEFT, ReasonCode.FORM_DROPPED)
        assert "back to" not in left.text.lower()
        later = await say(manager, "where is order 48213?")
        assert "cancel" not in later.text.lower() and "back to" not in later.text.lower()
        state = await manager.store.load("s1")
        assert state.active_intent is None and state.paused == []

    asyncio.run(main())


def test_no_thanks_leaves_a_form_even_when_the_model_reads_it_as_something_else():
    async def main():
        manager = build()
        await say(manager, "change the address of 51730")
        left = await say(manager, "no thanks")  # the keyword model says deny (a reply intent)
        assert left.details.decision.code in (ReasonCode.FORM_LEFT, ReasonCode.FORM_DROPPED)
        state = await manager.store.load("s1")
        assert state.active_intent is None

    asyncio.run(main())


def test_leaving_follows_the_domain_declaration_not_the_intent_name():
    async def main():
        domain = load_domain(DOMAIN_FILE)
        domain.intents["deny"].leaves_form = False  # this bot's deny answers yes/no slots: it does not leave
        manager = build(domain=domain)
        await say(manager, "change the address of 51730")
        kept = await say(manager, "nope")
        assert kept.details.decision.code is not ReasonCode.FORM_DROPPED
        assert (await manager.store.load("s1")).active_intent == "change_address"
        domain = load_domain(DOMAIN_FILE)
        domain.intents["thanks"].leaves_form = True  # a bot where "thanks" ends the form (a custom declaration)
        manager = build(domain=domain)
        await say(manager, "change the address of 51730")
        assert (await say(manager, "thank you")).details.decision.code is ReasonCode.FORM_DROPPED
        # outside a form, "no" still corrects the last request rather than stopping nothing
        manager = build()
        await say(manager, "where is order 48213?")
        corrected = await say(manager, "no, it's 51730")
        assert ReasonCode.CORRECTION in corrected.details.decision.codes

    asyncio.run(main())


def test_an_out_of_scope_question_during_a_form_is_answered_and_the_slot_asked_again():
    async def main():
        manager = build()
        await say(manager, "cancel my order")
        aside = await say(manager, "what is the weather like on mars today")
        assert aside.details.decision.code is not ReasonCode.INVALID_VALUE
        assert ReasonCode.OUT_OF_SCOPE_IN_FORM in aside.details.decision.codes
        assert ORDER_PROMPT_WORDS in lines(aside)[-1].lower()  # the slot asked again
        state = await manager.store.load("s1")
        assert state.active_intent == "cancel_order" and state.requested_slot == "order_id"
        answered = await say(manager, "48213")
        assert answered.text == "Do you want me to cancel order 48213?"
        # a bare mistyped value is still an invalid value, not an out-of-scope question
        manager = build()
        await say(manager, "cancel my order")
        assert (await say(manager, "1234")).details.decision.code is ReasonCode.INVALID_VALUE

    asyncio.run(main())


def test_the_out_of_scope_template_is_used_when_the_domain_has_one():
    async def main():
        plain = build()
        fallback = await say(plain, "the weather on mars")
        domain = load_domain(DOMAIN_FILE)
        domain.templates["out_of_scope"] = [VariantSpec(text="I can only help with Northwind orders and the shop.")]
        manager = build(domain=domain)
        reply = await say(manager, "the weather on mars")
        assert reply.text == "I can only help with Northwind orders and the shop." != fallback.text
        low = await say(manager, "hmm the thing")  # low confidence, not out of scope: the fallback as before
        assert low.text != reply.text

    asyncio.run(main())
