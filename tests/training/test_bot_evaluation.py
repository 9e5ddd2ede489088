"""Whole-bot evaluation on the demo domain with a scripted understander and a table retriever (no model).

Each message below is scripted to end one way (a right template, a wrong one, the first question of a form,
a retrieved record with and without an intent, a clarification, the fallback, an error, a hand-over), so the
classification, the metrics, the offline curve and the report files can be checked with exact numbers.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.dialogue import DialogueManager
from bot.domain import load_domain
from bot.messages import Message, Reply
from bot.sessions import MemorySessionStore
from bot.turns import HitSummary, ReasonCode, TurnDecision, TurnDetails
from bot.understanding import Retriever, Understander
from csbot.errors import DataError
from nlu.schema import IntentScore, ParseResult
from retrieval.records import Hit, QARecord, SearchResult
from training.bot_evaluation import (
    LabelledMessage,
    at_intent_threshold,
    at_retrieval_threshold,
    classify,
    load_messages,
    run_bot,
    summarise,
    threshold_curve,
)
from training.bot_report import write_bot_report

REPO = Path(__file__).resolve().parents[2]
DEMO_DOMAIN = REPO / "configs" / "demo" / "domain.yml"

#: text -> (parsed intent, confidence, out of scope); "boom" makes the understander fail
PARSES = {
    "which payment methods": ("payment_methods", 0.9, False),
    "can i pay later": ("payment_methods", 0.8, False),
    "where is my order": ("track_order", 0.93, False),
    "do you ship abroad": ("shop_question", 0.88, False),
    "gift wrap please": ("shop_question", 0.88, False),
    "when are you open": ("shop_question", 0.88, False),
    "blah blah": ("chitchat", 0.2, True),
    "get me a person": ("human_handoff", 0.96, False),
    "hmm paying": ("payment_methods", 0.4, False),
    "weather today": ("payment_methods", 0.95, False),
    "ford stock price": ("chitchat", 0.2, True),
    "bus times": ("shop_question", 0.88, False),
}
RECORDS = {
    "ship": QARecord("qa-ship", "Do you ship abroad?", "We ship to the EU.", intent="shop_question"),
    "wrap": QARecord("qa-wrap", "Can you gift wrap?", "Gift wrapping costs 3 EUR."),  # no intent
    "open": QARecord("qa-open", "When are you open?", "9 to 5.", intent="shop_question"),
    "hours": QARecord("qa-hours", "Opening hours on Sunday?", "Closed on Sundays.", intent="opening_hours"),
    "late": QARecord("qa-late", "How late does delivery run?", "Until 8 pm.", intent="delivery_times"),
}
#: text -> [(record, score)], best first; threshold 0.6, margin 0.05; anything else: one far hit
SEARCHES = {
    "do you ship abroad": [("ship", 0.9)],
    "gift wrap please": [("wrap", 0.9)],
    "when are you open": [("open", 0.72), ("hours", 0.70)],  # a near tie of different answers: which one?
    "bus times": [("late", 0.9)],
    "hmm paying": [("ship", 0.3)],
}

#: (text, gold intent or None for out of scope, the outcome expected)
SCRIPT = [
    ("which payment methods", "payment_methods", "right"),      # template of the gold intent
    ("can i pay later", "delivery_times", "wrong"),             # template of another intent
    ("where is my order", "track_order", "right"),              # ask_slot: the gold intent's form started
    ("do you ship abroad", "shop_question", "right"),           # retrieved record of the gold intent
    ("gift wrap please", "shop_question", "unattributed"),      # retrieved record with no intent
    ("when are you open", "shop_question", "clarified"),
    ("blah blah", "delivery_times", "fell_back"),               # out of scope to the model, nothing found
    ("get me a person", "human_handoff", "handed_over"),
    ("hmm paying", "payment_methods", "fell_back"),             # low confidence, nothing found
    ("boom", "greet", "fell_back"),                             # the model failed: an apology (error)
    ("weather today", None, "wrong"),                           # a confident template for an OOS message
    ("ford stock price", None, "fell_back"),                    # abstained
    ("bus times", None, "wrong"),                               # a retrieved answer to an OOS message
]


class ScriptedUnderstander(Understander):
    async def parse(self, text: str) -> ParseResult:
        if text == "boom":
            raise RuntimeError("the model is down")
        intent, confidence, oos = PARSES[text]
        top = IntentScore(intent, confidence)
        return ParseResult(text, top, [top], [], oos)


class TableRetriever(Retriever):
    async def search(self, text: str, k: int | None = None) -> SearchResult:
        scored = SEARCHES.get(text, [("late", 0.1)])
        return SearchResult(text, [Hit(RECORDS[key], score, score) for key, score in scored], 0.6, 0.05)


def demo_manager() -> DialogueManager:
    return DialogueManager(load_domain(DEMO_DOMAIN), ScriptedUnderstander(), MemorySessionStore(), TableRetriever())


def ask_with(manager: DialogueManager):
    """What the CLI hands :func:`run_bot`: a session id and a text to the manager's ``handle``."""
    return lambda session_id, text: manager.handle(Message(session_id, text, "evaluation"))


def messages() -> list[LabelledMessage]:
    return [LabelledMessage(text, gold) for text, gold, _ in SCRIPT]


@pytest.fixture(scope="module")
def outcomes():
    return asyncio.run(run_bot(ask_with(demo_manager()), messages(), concurrency=4))


def test_each_message_is_classified_as_scripted(outcomes):
    assert [(o.text, o.outcome) for o in outcomes] == [(text, outcome) for text, _, outcome in SCRIPT]
    by_text = {o.text: o for o in outcomes}
    assert by_text["where is my order"].source == "ask_slot"
    assert by_text["boom"].source == "error" and by_text["blah blah"].source == "fallback"
    assert by_text["get me a person"].source == "handoff"
    assert (by_text["can i pay later"].answered, by_text["bus times"].answered) == ("payment_methods", "delivery_times")
    assert by_text["do you ship abroad"].retrieval_score == 0.9 and by_text["do you ship abroad"].retrieval_intent == "shop_question"
    low = by_text["hmm paying"]
    assert low.codes == [ReasonCode.LOW_CONFIDENCE.value, ReasonCode.NO_CLOSE_ANSWER.value] and low.confidence == 0.4
    assert all(o.latency_ms is not None and o.latency_ms > 0 for o in outcomes)


def test_each_message_gets_its_own_session():
    seen: list[str] = []
    manager = demo_manager()

    async def ask(session_id: str, text: str) -> Reply:
        seen.append(session_id)
        return await manager.handle(Message(session_id, text))

    # the same form-starting message thrice: in one session the second would answer the slot question
    result = asyncio.run(run_bot(ask, [LabelledMessage("where is my order", "track_order")] * 3, concurrency=2))
    assert len(set(seen)) == 3 and [o.source for o in result] == ["ask_slot"] * 3


def test_the_metrics(outcomes):
    report = summarise(outcomes, intent_threshold=0.55, retrieval_threshold=0.6)
    assert (report.n, report.n_in_scope, report.n_out_of_scope) == (13, 10, 3)
    assert (report.right, report.wrong, report.unattributed, report.ask_slot_right) == (3, 3, 1, 1)
    assert report.containment == pytest.approx(3 / 10)
    assert report.precision == pytest.approx(3 / 6)  # the unattributed answer is neither right nor wrong
    assert report.oos_abstain_rate == pytest.approx(1 / 3)
    assert (report.clarify_share, report.fallback_share, report.handoff_share) == pytest.approx((1 / 13, 4 / 13, 1 / 13))
    in_scope, oos = report.shares["in_scope"], report.shares["out_of_scope"]
    assert (in_scope.n, in_scope.answered, in_scope.clarified, in_scope.fell_back, in_scope.handed_over) == (10, 5, 1, 3, 1)
    assert (oos.n, oos.answered, oos.fell_back) == (3, 2, 1) and oos.fallback_share == pytest.approx(1 / 3)
    rows = {row.intent: row for row in report.per_intent}
    pay = rows["payment_methods"]
    assert (pay.n, pay.right, pay.fell_back, pay.containment) == (2, 1, 1, 0.5)
    assert (pay.answered_as, pay.precision) == (3, pytest.approx(1 / 3))  # right once, to delivery and weather wrong
    assert (rows["shop_question"].right, rows["shop_question"].unattributed, rows["shop_question"].clarified) == (1, 1, 1)
    assert rows["(out of scope)"].n == 3 and rows["(out of scope)"].containment is None
    wrong = [(w.gold, w.answered, w.count) for w in report.wrong_answers]
    assert sorted(wrong) == [("(out of scope)", "delivery_times", 1), ("(out of scope)", "payment_methods", 1),
                             ("delivery_times", "payment_methods", 1)]
    assert report.latency.n == 13 and 0 < report.latency.p50_ms <= report.latency.p99_ms


def test_the_curve_is_recomputed_from_the_recorded_numbers(outcomes):
    points = {p.threshold: p for p in threshold_curve(outcomes, [0.0, 0.55, 0.85, 0.91, 0.99])}
    # at the configured threshold the curve is what the bot did
    assert (points[0.55].containment, points[0.55].precision) == pytest.approx((3 / 10, 3 / 6))
    # lower: the low-confidence "hmm paying" (0.4) would have got its (right) template
    assert (points[0.0].containment, points[0.0].precision, points[0.0].answered) == pytest.approx((4 / 10, 4 / 7, 8))
    # higher: "can i pay later" (0.8) is no longer answered; then "which payment methods" (0.9) too
    assert (points[0.85].containment, points[0.85].precision) == pytest.approx((3 / 10, 3 / 5))
    assert (points[0.91].containment, points[0.91].precision) == pytest.approx((2 / 10, 2 / 4))
    # above the OOS message's 0.95 confidence only retrieval answers remain; its abstention rises
    assert points[0.99].oos_abstain_rate == pytest.approx(2 / 3) and points[0.99].answered == 3
    moved = at_intent_threshold(next(o for o in outcomes if o.text == "hmm paying"), 0.3)
    assert (moved.outcome, moved.answered) == ("right", "payment_methods")


def test_the_retrieval_curve(outcomes):
    ship = next(o for o in outcomes if o.text == "do you ship abroad")
    assert at_retrieval_threshold(ship, 0.95).outcome == "fell_back"
    low = next(o for o in outcomes if o.text == "hmm paying")
    assert (at_retrieval_threshold(low, 0.3).outcome, at_retrieval_threshold(low, 0.3).answered) == ("wrong", "shop_question")
    points = {p.threshold: p for p in threshold_curve(outcomes, [0.95], at_retrieval_threshold)}
    assert points[0.95].precision == pytest.approx(2 / 4)  # the two right and two wrong templates remain


def test_classify_attributes_the_completed_intent_and_a_handoff():
    details = TurnDetails(intent="inform", confidence=0.9, completed="track_order",
                          decision=TurnDecision("fill_slot", ReasonCode.SLOT_ANSWER))
    assert classify("track_order", Reply([], "template", details=details)).outcome == "right"
    hit = TurnDetails(hits=[HitSummary("r", "q", 0.8, 0.8, None)])
    assert classify(None, Reply([], "retrieve", details=hit)).outcome == "wrong"  # OOS: every answer is wrong
    assert classify("x", Reply([], "retrieve", details=hit)).outcome == "unattributed"
    assert classify("x", Reply([], "silent")).outcome == "fell_back"


def test_the_report_files(outcomes, tmp_path):
    report = summarise(outcomes, 0.55, 0.6)
    paths = write_bot_report(report, outcomes, tmp_path / "out")
    data = json.loads(paths["json"].read_text())
    assert data["containment"] == pytest.approx(0.3) and data["primary_metric"] == "containment"
    assert {"precision", "oos_abstain_rate", "shares", "per_intent", "wrong_answers", "latency", "intent_curve",
            "retrieval_curve", "intent_threshold"} <= set(data)
    assert {p["threshold"] for p in data["intent_curve"]} >= {0.0, 0.55, 1.0}
    lines = paths["messages"].read_text().splitlines()
    assert len(lines) == 13 and json.loads(lines[0])["outcome"] == "right"
    text = paths["markdown"].read_text()
    assert text.index("containment") < text.index("## Per intent") < text.index("## Most common wrong answers")
    assert "could not be attributed" in text and "30.0%" in text and "weather today" in text
    for name in ("curve", "per_intent"):
        assert paths[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_load_messages_reads_labelled_data_oos_labels_and_plain_text(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text('{"text": "hi", "intent": "greet"}\n{"text": "the weather", "intent": "oos"}\n')
    extra = tmp_path / "oos.txt"
    extra.write_text("stock prices\n\n  bus times  \n")
    found = load_messages([str(data)], [str(extra)])
    assert found == [LabelledMessage("hi", "greet"), LabelledMessage("the weather", None),
                     LabelledMessage("stock prices", None), LabelledMessage("bus times", None)]
    assert len(load_messages([str(data)], [str(extra)], limit=1)) == 2
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(DataError, match=r"empty\.txt"):
        load_messages([str(data)], [str(empty)])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hi", "intent": "greet"}\n{"text": broken\n')
    with pytest.raises(DataError) as info:
        load_messages([str(bad)])
    assert info.value.line == 2 and info.value.path == bad
