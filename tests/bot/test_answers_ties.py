"""Near-tied retrieval hits: records of one intent the bot answers with its own template are one answer (the top
hit, no question), different intents ask which was meant, records of a question intent (a catch-all such as
``shop_question``) or without intents keep the answer-text rule; the decision note says the threshold applied.

The demo domain with the keyword understander of test_dialogue.py ("tell me about gift wrap" is a
question for the Q&A index) and a retriever whose hits are given per test.
"""

from __future__ import annotations

import asyncio

from test_dialogue import DOMAIN_FILE, KeywordUnderstander

from bot.dialogue import DialogueManager
from bot.domain import load_domain
from bot.messages import Message, Reply
from bot.sessions import MemorySessionStore
from bot.turns import ReasonCode
from bot.understanding import Retriever
from retrieval.records import Hit, QARecord, SearchResult

QUERY = "tell me about gift wrap"
PAID = QARecord("w-paid", "Can you gift wrap my order?", "Gift wrapping costs 3 EUR per parcel.", intent="gift_wrap")
HOW = QARecord("w-how", "How is gift wrapping done?", "We wrap in recycled paper with a ribbon.", intent="gift_wrap")
CARD = QARecord("w-card", "Can I add a gift card?", "Gift wrapping costs 3 EUR per parcel.", intent="gift_card")
HOURS = QARecord("hours", "When are you open?", "Monday to Friday, 9:00 to 17:00.", intent="opening_hours")


class GivenHits(Retriever):
    """Returns the same hits for every query, with the index threshold and margin given."""

    def __init__(self, hits: list[tuple[QARecord, float]], threshold: float = 0.6, margin: float = 0.05) -> None:
        self.hits, self.threshold, self.margin = hits, threshold, margin

    async def search(self, text: str, k: int | None = None) -> SearchResult:
        return SearchResult(text, [Hit(r, s, s) for r, s in self.hits], self.threshold, self.margin)


def answering_domain():
    """The demo domain plus the records' intents, each answered by a template of its own."""
    from bot.domain.schema import IntentSpec, VariantSpec

    domain = load_domain(DOMAIN_FILE)
    for intent in ("gift_wrap", "gift_card", "opening_hours"):
        domain.intents[intent] = IntentSpec()
        domain.templates[intent] = [VariantSpec(text=f"about {intent}")]
    return domain


def ask(retriever: Retriever, domain=None) -> Reply:
    manager = DialogueManager(domain or answering_domain(), understander=KeywordUnderstander(),
                              store=MemorySessionStore(), retriever=retriever)
    return asyncio.run(manager.handle(Message("s", QUERY, "test")))


def test_a_near_tie_within_one_intent_answers_with_the_top_hit():
    reply = ask(GivenHits([(PAID, 0.80), (HOW, 0.79), (HOURS, 0.3)]))  # different answer texts, one intent
    assert reply.source == "retrieve" and reply.text == PAID.answer
    assert reply.details.decision.codes == [ReasonCode.QUESTION]


def test_a_near_tie_of_one_intent_at_the_threshold_is_one_answer():
    reply = ask(GivenHits([(HOW, 0.62), (PAID, 0.61), (HOURS, 0.3)]))  # both within the margin of 0.6
    assert reply.source == "retrieve" and reply.text == HOW.answer


def test_a_near_tie_between_different_intents_asks_which_was_meant():
    reply = ask(GivenHits([(PAID, 0.80), (CARD, 0.78), (HOW, 0.77)]))  # CARD: the same answer text, another intent
    assert reply.source == "clarify" and reply.details.decision.code is ReasonCode.AMBIGUOUS
    assert [b.title for b in reply.messages[0].buttons] == [PAID.question, CARD.question]  # HOW: PAID's intent


def test_hits_of_different_intents_far_apart_are_not_a_tie():
    reply = ask(GivenHits([(PAID, 0.90), (CARD, 0.70)]))
    assert reply.source == "retrieve" and reply.text == PAID.answer


def test_records_without_intents_keep_the_answer_text_rule():
    plain = [QARecord(r.id, r.question, r.answer) for r in (PAID, HOW, CARD)]
    reply = ask(GivenHits([(plain[0], 0.80), (plain[1], 0.79)]))  # different answers: which one?
    assert reply.source == "clarify" and len(reply.messages[0].buttons) == 2
    same = ask(GivenHits([(plain[0], 0.80), (plain[2], 0.79)]))  # the same answer text: one answer
    assert same.source == "retrieve" and same.text == PAID.answer


def test_the_decision_note_names_the_threshold_applied():
    answered = ask(GivenHits([(PAID, 0.80)], threshold=0.7))
    assert answered.source == "retrieve"
    assert "top score 0.8000, threshold 0.7000 (index)" in answered.details.decision.note
    domain = answering_domain()
    domain.thresholds.retrieval = 0.9  # the domain's threshold wins over the index's
    refused = ask(GivenHits([(PAID, 0.80)], threshold=0.7), domain)
    assert refused.source == "fallback" and refused.details.decision.code is ReasonCode.NO_CLOSE_ANSWER
    assert "threshold 0.9000 (domain)" in refused.details.decision.note
    nothing = ask(GivenHits([]))
    assert nothing.source == "fallback" and "no hits, threshold 0.6000 (index)" in nothing.details.decision.note


def test_records_of_a_question_intent_are_told_apart_by_their_answers():
    """``shop_question`` is a question intent (``retrieve: true``) in the demo: its records answer different things,
    so a near-tie between two of them asks which was meant, and the same two under a templated intent do not."""
    wrap, receipt = (QARecord(r.id, r.question, r.answer, intent="shop_question") for r in (PAID, HOW))
    reply = ask(GivenHits([(wrap, 0.80), (receipt, 0.79)]))
    assert reply.source == "clarify" and [b.title for b in reply.messages[0].buttons] == [wrap.question, receipt.question]
    same_intent = ask(GivenHits([(PAID, 0.80), (HOW, 0.79)]))
    assert same_intent.source == "retrieve"
    unknown = ask(GivenHits([(PAID, 0.80), (HOW, 0.79)]), load_domain(DOMAIN_FILE))  # gift_wrap not in this domain
    assert unknown.source == "clarify"
