"""BM25 lexical index: tokenising codes and e-mails whole, rare-token weighting, normalised scores, removal."""

from __future__ import annotations

import pytest

from retrieval.lexical import BM25Index, tokenize

QUESTIONS = {
    0: "where is my order",
    1: "where is my order 48213",
    2: "where is my order please tell me",
    3: "my order has not arrived where is it",
    4: "cancel my order",
    5: "email me at jane.doe@example.com about my order",
    6: "is product AB-1234 in stock",
}


@pytest.fixture
def bm25():
    index = BM25Index()
    for label, text in QUESTIONS.items():
        index.add(label, text)
    return index


def test_tokenize_keeps_emails_and_codes_whole():
    assert tokenize("Mail Jane.Doe@Example.com re AB-1234, v2.1 and order 48213!") == [
        "mail", "jane.doe@example.com", "re", "ab-1234", "v2.1", "and", "order", "48213"]


def test_a_rare_order_number_outranks_common_words(bm25):
    ranking = bm25.search("where is my order 48213", 3)
    assert ranking[0][0] == 1
    assert ranking[0][1] > ranking[1][1]


def test_codes_and_emails_match_only_whole(bm25):
    assert [label for label, _ in bm25.search("AB-1234", 5)] == [6]
    assert bm25.search("AB-9999", 5) == []
    assert [label for label, _ in bm25.search("jane.doe@example.com", 5)] == [5]


def test_scores_are_shares_in_0_1(bm25):
    scores = bm25.scores("where is my order 48213")
    assert set(scores) == set(QUESTIONS)  # every question shares a word ("is", "my", "order") with the query
    assert all(0.0 < s <= 1.0 for s in scores.values())
    assert max(scores, key=scores.get) == 1
    assert bm25.scores("nothing matches zzz") == {}
    assert bm25.scores("") == {}


def test_the_share_grows_with_the_query_terms_matched():
    index = BM25Index()
    for label, text in enumerate(["refund 48213", "refund 99120", "shipping times", "opening hours"]):
        index.add(label, text)
    scores = index.scores("refund 48213")
    assert set(scores) == {0, 1}
    assert 0.0 < scores[1] < scores[0] <= 1.0
    assert scores[0] == pytest.approx(1.0, abs=0.05)  # every query term met once, at average length
    # repeating a matched term never pushes the share past 1
    index.add(9, " ".join(["refund 48213"] * 50))
    assert all(0.0 < s <= 1.0 for s in index.scores("refund 48213 refund").values())


def test_remove_forgets(bm25):
    bm25.remove(1, QUESTIONS[1])
    assert len(bm25) == len(QUESTIONS) - 1
    assert 1 not in bm25.scores("where is my order 48213")
    assert "48213" not in bm25.postings
    bm25.remove(1, QUESTIONS[1])  # unknown labels are ignored
    bm25.add(1, "order 48213 arrived damaged")
    assert bm25.search("48213", 1)[0][0] == 1


def test_adding_a_label_twice_is_refused(bm25):
    with pytest.raises(ValueError, match="already"):
        bm25.add(0, "again")


def test_scores_restricted_to_labels(bm25):
    everything = bm25.scores("where is my order 48213")
    some = bm25.scores("where is my order 48213", [1, 4, 99])
    assert set(some) == {1, 4}
    assert some == {label: everything[label] for label in (1, 4)}
    assert bm25.scores("order", [6]) == {}  # a wanted label that does not match is left out
    assert bm25.scores("where is my order", []) == {}


def test_empty_index_scores_nothing():
    assert BM25Index().search("anything", 5) == []


def test_search_draws_candidates_from_rare_terms_only():
    index = BM25Index()
    for label in range(1100):
        index.add(label, f"where is my order number {label}")
    index.add(5000, "refund for order 48213")
    assert index.search("order", 5) == []  # "order" is in more than 1000 records: no candidates from it
    found = index.search("order 48213", 5)
    assert [label for label, _ in found] == [5000]
    # the common term still counts in the candidate's share
    assert found[0][1] == pytest.approx(index.scores("order 48213", [5000])[5000])
    assert 0.0 < found[0][1] <= 1.0
