"""The built-in entity extractors on real phrasings: what each finds, its normalised value, and what it leaves alone."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from nlu.extractors import (
    AmountExtractor,
    DateExtractor,
    EmailExtractor,
    NumberExtractor,
    OrderCodeExtractor,
    PhoneExtractor,
    TimeExtractor,
    UrlExtractor,
    parse_amount,
)

#: a Wednesday
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def found(extractor, text, now=NOW):
    return [(e.value, e.normalized) for e in extractor.extract(text, now)]


# -- amounts -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value", "normalized"), [
    ("send 50 bucks to evan", "50 bucks", "50 USD"),
    ("fifty quid", "fifty quid", "50 GBP"),
    ("€20", "€20", "20 EUR"),
    ("can I get 20€ back", "20€", "20 EUR"),
    ("transfer $1,250.50 to savings", "$1,250.50", "1250.50 USD"),
    ("I was charged USD 12.5 twice", "USD 12.5", "12.50 USD"),
    ("pay twenty-one dollars", "twenty-one dollars", "21 USD"),
    ("one hundred and fifty pounds please", "one hundred and fifty pounds", "150 GBP"),
    ("it costs 99 cents", "99 cents", "0.99 USD"),
    ("a loan of 1.5 million euros", "1.5 million euros", "1500000 EUR"),
    ("SEK 200", "SEK 200", "200 SEK"),
])
def test_amounts(text, value, normalized):
    assert found(AmountExtractor(), text) == [(value, normalized)]


def test_several_amounts_and_the_normalised_form_reads_back():
    assert found(AmountExtractor(), "I paid $12 and then 3 EUR") == [("$12", "12 USD"), ("3 EUR", "3 EUR")]
    assert parse_amount("12.50 USD") == (Decimal("12.50"), "USD")
    assert parse_amount("50") == (Decimal(50), None)


# -- numbers -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("twenty-one", [("twenty-one", 21)]),
    ("I need three hundred and forty two labels", [("three hundred and forty two", 342)]),
    ("3 items, not -4, about 1,250.50 or 3.5.", [("3", 3), ("-4", -4), ("1,250.50", 1250.5), ("3.5", 3.5)]),
    ("one", [("one", 1)]),
    ("which one is it", []),  # a lone "one" in running text is no number
    ("five five five", []),  # not one number
    ("meet at 3pm on the 2nd", []),
    ("order AB-12345", []),
])
def test_numbers(text, expected):
    assert found(NumberExtractor(), text) == expected
    assert all(isinstance(n, int | float) for _, n in expected)


# -- dates and times ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value", "iso"), [
    ("can you deliver it next monday", "next monday", "2026-12-07"),
    ("tomorrow at 3pm", "tomorrow", "2026-12-03"),
    ("in 2 days", "in 2 days", "2026-12-04"),
    ("in two weeks", "in two weeks", "2026-12-16"),
    ("3 days ago", "3 days ago", "2026-11-29"),
    ("the day after tomorrow", "the day after tomorrow", "2026-12-04"),
    ("yesterday", "yesterday", "2026-12-01"),
    ("on friday", "friday", "2026-12-04"),
    ("on the 3rd of june", "3rd of june", "2027-06-03"),  # the next one to come
    ("by June 3, 2027", "June 3, 2027", "2027-06-03"),
    ("before 24 dec", "24 dec", "2026-12-24"),
    ("booked for 2026-12-07", "2026-12-07", "2026-12-07"),
    ("on 12/05/2024", "12/05/2024", "2024-12-05"),  # month first
    ("on 25/12/2024", "25/12/2024", "2024-12-25"),  # ... unless it cannot be a month
])
def test_dates(text, value, iso):
    assert found(DateExtractor(), text) == [(value, iso)]


def test_relative_dates_follow_the_message_time():
    monday = datetime(2026, 12, 7, 9, 0)
    assert found(DateExtractor(), "next monday", monday) == [("next monday", "2026-12-14")]
    assert found(DateExtractor(), "today", monday) == [("today", "2026-12-07")]
    assert found(DateExtractor(), "this monday", monday) == [("this monday", "2026-12-07")]


@pytest.mark.parametrize(("text", "expected"), [
    ("tomorrow at 3pm", [("3pm", "15:00")]),
    ("between 15:00 and 3:30 p.m.", [("15:00", "15:00"), ("3:30 p.m.", "15:30")]),
    ("at 10 o'clock", [("10 o'clock", "10:00")]),
    ("noon or midnight", [("noon", "12:00"), ("midnight", "00:00")]),
    ("12am", [("12am", "00:00")]),
    ("at 25:00", []),
    ("rated 1.5 stars", []),
])
def test_times(text, expected):
    assert found(TimeExtractor(), text) == expected


# -- contacts and codes ------------------------------------------------------------------------------------------


def test_emails():
    assert found(EmailExtractor(), "sure, it's Jane.Doe+shop@Example.CO.uk.") == [
        ("Jane.Doe+shop@Example.CO.uk", "Jane.Doe+shop@example.co.uk")]
    assert found(EmailExtractor(), "mail me at jane@example") == []


@pytest.mark.parametrize(("text", "value", "e164"), [
    ("call me on +44 20 7946 0958", "+44 20 7946 0958", "+442079460958"),
    ("my number is +1 415 555 2671 thanks", "+1 415 555 2671", "+14155552671"),
    ("it's (415) 555-2671", "(415) 555-2671", "+14155552671"),
    ("ring +31 20 123 4567", "+31 20 123 4567", "+31201234567"),
    ("+49 30 901820", "+49 30 901820", "+4930901820"),
])
def test_phones(text, value, e164):
    assert found(PhoneExtractor(), text) == [(value, e164)]


def test_not_phones():
    for text in ("order 48213", "I paid 1,250.50", "+31", "call 555-CALL-NOW", "123 456"):
        assert found(PhoneExtractor(), text) == [], text


def test_urls():
    text = "see https://Example.com/help?x=1). or www.shop.io, or example.com/returns."
    assert found(UrlExtractor(), text) == [
        ("https://Example.com/help?x=1", "https://example.com/help?x=1"),
        ("www.shop.io", "https://www.shop.io"),
        ("example.com/returns", "https://example.com/returns"),
    ]
    assert found(UrlExtractor(), "e.g. file.txt or jane@example.com") == []


def test_order_codes():
    text = "orders 48213, AB-12345, #99881 and ord123456"
    assert found(OrderCodeExtractor(), text) == [("48213", "48213"), ("AB-12345", "AB-12345"), ("#99881", "99881"),
                                                 ("ord123456", "ORD123456")]
    assert found(OrderCodeExtractor(), "in 2024 I paid 1,250.50 on 2026-12-07, 4821") == []


# -- no false positives ------------------------------------------------------------------------------------------

PLAIN = [
    "What is my balance?",
    "I want to transfer money to my friend",
    "How do I change my PIN",
    "I may be late with the payment",
    "march on, the pound is weak and the dollar strong",
    "second thoughts: cancel the card please",
    "I sat down and tried again",
    "which one should I choose?",
    "try 5 times and then call us",
    "the app keeps crashing on my phone",
    "why was my top-up declined?",
    "I have 2 cards and 3 accounts",
    "Can you play some music by Queen",
    "book a table for four at a sushi place",
]


@pytest.mark.parametrize("text", PLAIN)
def test_plain_messages_have_no_amounts_or_dates(text):
    for extractor in (AmountExtractor(), DateExtractor()):
        assert found(extractor, text) == [], (extractor.name, text)


# -- hostile input -----------------------------------------------------------------------------------------------

HOSTILE = ["a" * 100_000, "1" * 100_000, "1 " * 50_000, "one " * 25_000, "$" * 100_000, "$1 " * 33_000,
           "a." * 50_000, "a@" * 50_000, "1-" * 50_000 + "x", "1 (" * 33_333, "monday " * 14_000,
           "50 bucks " * 11_000, "http://" + "a" * 100_000, "in 2 days " * 10_000, "#" + "1" * 100_000]


@pytest.mark.parametrize("extractor", [AmountExtractor(), NumberExtractor(), DateExtractor(), TimeExtractor(),
                                       EmailExtractor(), PhoneExtractor(), UrlExtractor(), OrderCodeExtractor()],
                         ids=lambda x: x.name)
def test_a_100k_message_finishes(extractor):
    """Each extractor's patterns are linear and its library sees at most a few short spans (MAX_CANDIDATES):
    every hostile message below finishes (the pipeline gives an extractor no more than 2,000 characters)."""
    for text in HOSTILE:
        assert isinstance(extractor.extract(text, NOW), list)
