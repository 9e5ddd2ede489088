"""End to end with the real default embedding model: paraphrased questions find the right FAQ answer, and a
saved and reloaded index answers the same.
"""

from __future__ import annotations

import pytest

from retrieval.config import RetrievalConfig
from retrieval.qa_index import QAIndex
from retrieval.records import QARecord

pytestmark = pytest.mark.slow

SHOP_FAQ = [
    ("track", "Where is my order?", "You can follow your parcel on the Orders page."),
    ("return", "How do I return an item?", "Print a free return label from your account within 30 days."),
    ("refund", "When will I get my refund?", "Refunds reach your account 5 to 7 days after we receive the return."),
    ("ship-abroad", "Do you ship internationally?", "We ship to the EU, the UK, Canada and the US."),
    ("ship-cost", "How much does shipping cost?", "Shipping is free above 50 euros, otherwise 4.90."),
    ("pay", "Which payment methods do you accept?", "Cards, PayPal and bank transfer."),
    ("address", "Can I change my delivery address?", "Yes, until the parcel has shipped."),
    ("cancel", "How can I cancel my order?", "Cancel it from the Orders page before it ships."),
    ("password", "I forgot my password", "Use the Forgot password link on the login page."),
    ("size", "How do I find my shoe size?", "Our size guide converts EU, UK and US sizes."),
    ("gift", "Do you sell gift cards?", "Yes, digital gift cards from 10 to 200 euros."),
    ("hours", "When is customer service open?", "Monday to Friday, 9:00 to 18:00."),
]

PARAPHRASES = [
    ("my package hasn't arrived yet, where can I see its status", "track"),
    ("how do I send back a product I ordered", "return"),
    ("how long until my money is refunded", "refund"),
    ("do you deliver to other countries", "ship-abroad"),
    ("what payment options are there", "pay"),
    ("I can't remember my login password", "password"),
]


@pytest.fixture(scope="module")
def index():
    records = [QARecord(id, question, answer) for id, question, answer in SHOP_FAQ]
    return QAIndex.build(records, RetrievalConfig())


def test_paraphrases_find_the_right_answer(index):
    assert len(index) == len(SHOP_FAQ) and index.embedder.dimension == 384
    results = index.search([query for query, _ in PARAPHRASES])
    for result, (query, expected) in zip(results, PARAPHRASES, strict=True):
        top = result.top
        assert top.record.id == expected, (query, [(h.record.id, round(h.score, 3)) for h in result.hits])
        assert top.score > 0.5, (query, top.score)
        assert top.score > result.hits[1].score


def test_an_unrelated_query_scores_low(index):
    result = index.search("what is the capital of Mongolia")[0]
    assert result.top.score < 0.4 and not result.answered


def test_save_and_load_answer_the_same(index, tmp_path):
    queries = [query for query, _ in PARAPHRASES]
    loaded = QAIndex.load(index.save(tmp_path / "index"), RetrievalConfig())
    before, after = index.search(queries), loaded.search(queries)
    assert [r.top.record.id for r in after] == [expected for _, expected in PARAPHRASES]
    for a, b in zip(before, after, strict=True):
        assert [h.record.id for h in a.hits] == [h.record.id for h in b.hits]
        assert [h.score for h in a.hits] == pytest.approx([h.score for h in b.hits], abs=1e-5)
