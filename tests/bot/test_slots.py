"""Slot values: validation per slot type and regex, values from the tagger's entities and from bare replies."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.domain.schema import SlotSpec
from bot.slots import from_bare_reply, from_entities, validate
from nlu.schema import ParsedEntity


def spec(type_: str = "text", **extra) -> SlotSpec:
    return SlotSpec(type=type_, prompt="?", **extra)


def entity(name: str, value: str, start: int = 0) -> ParsedEntity:
    return ParsedEntity(name, value, start, start + len(value), 0.9)


# -- order numbers ---------------------------------------------------------------------------------


def test_order_number():
    order = spec("order_number")
    assert validate("order_id", order, " 48213 ").value == "48213" and validate("order_id", order, "48213").ok
    for bad in ("4821", "482131", "48a13", "#48213"):
        check = validate("order_id", order, bad)
        assert not check.ok and check.problem == f"{bad!r} is not a valid order number (5 digits)"
    assert from_bare_reply(order, "it's 48213, thanks") == "48213"
    assert from_bare_reply(order, "not 11111 but 48213") == "48213"  # the last one wins
    assert from_bare_reply(order, "my order is 1234") == "1234"  # none found: the reply unwrapped, to be refused
    assert from_bare_reply(order, "1234567") == "1234567"
    assert from_entities("order_id", order, [entity("order_id", "11111"), entity("order_id", "48213", 10)]) == "48213"
    assert from_entities("order_id", order, [entity("email", "a@b.co")]) is None


# -- e-mail ----------------------------------------------------------------------------------------


def test_email():
    email = spec("email")
    assert validate("email", email, "Jane.Doe+shop@Example.co.uk").ok
    for bad in ("jane@example", "jane.example.com", "jane@@example.com", "jane doe@example.com"):
        check = validate("email", email, bad)
        assert not check.ok and "is not a valid e-mail address" in check.problem
    assert from_bare_reply(email, "sure, it's Jane.Doe@Example.com.") == "Jane.Doe@Example.com"
    assert from_bare_reply(email, "my email is jane@example") == "jane@example"
    assert from_entities("email", email, [entity("email", "tom@mail.co.uk")]) == "tom@mail.co.uk"


# -- dates -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["next friday", "Next Friday", "3rd of june", "3 June", "june 3rd", "tomorrow", "today",
                                  "this week", "last month", "monday", "fri", "12/05/2024", "12.5", "2024-06-03",
                                  "1st of sept", "dec 24th"])
def test_date_words_are_valid(text):
    assert validate("date", spec("date"), text).ok, text


@pytest.mark.parametrize("text", ["someday", "next year", "soon", "june", "the day after", "3rd of"])
def test_non_dates_are_refused(text):
    check = validate("date", spec("date"), text)
    assert not check.ok and check.problem == f"{text!r} is not a valid date"


def test_date_in_a_bare_reply():
    date = spec("date")
    assert from_bare_reply(date, "deliver it next friday please") == "next friday"
    assert from_bare_reply(date, "on the 3rd of june, if possible") == "3rd of june"
    assert from_bare_reply(date, "either monday or 2024-06-03") == "2024-06-03"
    assert from_bare_reply(date, "whenever") == "whenever"


# -- numbers ---------------------------------------------------------------------------------------


def test_number():
    number = spec("number")
    assert validate("qty", number, "3").value == 3 and isinstance(validate("qty", number, "3").value, int)
    assert validate("qty", number, "2.5").value == 2.5
    assert validate("qty", number, "2,5").value == 2.5
    assert validate("qty", number, "-4").value == -4
    for bad in ("three apples", "3 pcs", "1e3", "", "five five"):
        assert not validate("qty", number, bad).ok, bad
    assert validate("qty", number, "3 pcs").problem == "'3 pcs' is not a valid number"
    assert validate("qty", number, "three").value == 3  # number words are numbers (issue 16)
    assert from_bare_reply(number, "I need 3 of them") == "3"
    assert from_bare_reply(number, "make it 2 no 4") == "4"


# -- phone numbers ---------------------------------------------------------------------------------


def test_phone():
    phone = spec("phone")
    for good in ("+31 20 123 4567", "020-1234567", "(020) 123 4567", "07700900123"):
        assert validate("phone", phone, good).ok, good
    for bad in ("12345", "call me", "+31", "555-CALL-NOW"):
        check = validate("phone", phone, bad)
        assert not check.ok and "is not a valid phone number" in check.problem
    assert from_bare_reply(phone, "call me on +44 7700 900123 please") == "+44 7700 900123"
    assert from_bare_reply(phone, "it's (020) 123 4567") == "(020) 123 4567"  # the bracket is part of the number


# -- regex slots, text, empty values ---------------------------------------------------------------


def test_regex_slot_full_match_case_insensitive_and_before_the_type():
    address = spec("text", regex=r".*\d.*\w{3,}.*")
    assert validate("address", address, "Keizersgracht 12, Amsterdam").ok
    check = validate("address", address, "Amsterdam")
    assert not check.ok and check.problem == "'Amsterdam' is not a valid address"
    code = spec("text", regex="[a-z]{2}-\\d{3}")
    assert validate("code", code, "AB-123").ok  # case-insensitive
    assert not validate("code", code, "xAB-123").ok and not validate("code", code, "AB-1234").ok  # full match
    # a regex overrides the type: an 'order_number' with its own pattern takes what the pattern says
    legacy = spec("order_number", regex=r"[A-Z]\d{6}")
    assert validate("order_id", legacy, "A123456").ok and not validate("order_id", legacy, "48213").ok
    # ...and a bare reply is not searched for the type's pattern, only unwrapped
    assert from_bare_reply(legacy, "it's A123456.") == "A123456"


def test_text_and_any_slots():
    for type_ in ("text", "any"):
        assert validate("product", spec(type_), "  a very long hoodie  ").value == "a very long hoodie"
    check = validate("product", spec("text"), "   ")
    assert not check.ok and check.problem == "the product is empty"
    assert validate("order_id", spec("order_number"), "").problem == "the order id is empty"


@pytest.mark.parametrize(("reply", "value"), [
    ("the wool scarf", "wool scarf"),
    ("no, the hoodie!", "hoodie"),
    ("it's the running shoes.", "running shoes"),
    ("my product is sneakers", "sneakers"),
    ("sorry, I meant the denim jacket", "denim jacket"),
    # filler words are whole words only: values that merely start like one keep every letter
    ("notebook", "notebook"),
    ("Northwood Lane 5", "Northwood Lane 5"),
    ("Thermos flask", "Thermos flask"),
    ("itsy bitsy spider", "itsy bitsy spider"),
    ("Nokia charger", "Nokia charger"),
    ("theatre tickets", "theatre tickets"),
])
def test_bare_reply_of_a_text_slot_is_unwrapped(reply, value):
    assert from_bare_reply(spec("text"), reply) == value


def test_from_entities_uses_the_slot_name_or_its_entity_list():
    entities = [entity("city", "Leeds"), entity("town", "York", 10), entity("product", "hoodie", 20)]
    assert from_entities("product", spec(), entities) == "hoodie"
    assert from_entities("destination", spec(entities=["city", "town"]), entities) == "York"
    assert from_entities("destination", spec(), entities) is None
    assert from_entities("product", spec(), []) is None


# -- hostile replies (issue 12) --------------------------------------------------------------------

ADDRESS_REGEX = r".*\d.*\w{3,}.*"  # the demo's address pattern: quadratic in the text it is given

#: (slot spec, a 100 KB reply that is worst-case input for the slot's pattern)
LONG_REPLIES = {
    "email": (spec("email"), "a" * 100_000),
    "address": (spec("text", regex=ADDRESS_REGEX), "1 " * 50_000),
    "phone": (spec("phone"), "1 (" * 33_333),
    "date": (spec("date"), "1 " * 50_000),
    "number": (spec("number"), "1" * 100_000),
    "order_number": (spec("order_number"), "4" * 100_000),
    "text": (spec("text"), "my " * 33_333),
}


class Seen:
    """Stands in for a compiled pattern (or the ``re`` module): fails at once when a text longer than
    ``limit`` is given to it (rather than wait minutes for the pattern), else runs the pattern."""

    def __init__(self, inner, limit: int) -> None:
        self.inner = inner
        self.limit = limit

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name not in ("fullmatch", "findall", "match", "search", "sub"):
            return attr

        def checked(*args, **kwargs):
            # re.fullmatch(pattern, text): the text is the last string given; pattern.fullmatch(text): the only one
            texts = [a for a in args if isinstance(a, str)]
            assert not texts or len(texts[-1]) <= self.limit, f"{name} was given {len(texts[-1])} characters"
            return attr(*args, **kwargs)

        return checked


@pytest.mark.parametrize("slot", sorted(LONG_REPLIES))
def test_a_long_reply_is_refused_as_too_long_before_any_pattern_sees_it(slot, monkeypatch):
    """Issue 12: a 100 KB reply took minutes of the event loop (the e-mail finder and the demo's address
    regex are quadratic in it). A reply longer than the slot's max_length is now refused for its length,
    and no pattern is given more than max_length characters."""
    import re

    import bot.slots as slots

    slot_spec, reply = LONG_REPLIES[slot]
    limit = 1000
    monkeypatch.setattr(slots, "re", Seen(re, limit))
    monkeypatch.setattr(slots, "_FINDERS", {name: Seen(finder, limit) for name, finder in slots._FINDERS.items()})
    monkeypatch.setattr(slots, "_FILLER", Seen(slots._FILLER, limit))
    check = validate(slot, slot_spec, from_bare_reply(slot_spec, reply))
    assert not check.ok and check.too_long
    assert check.problem == f"the {slot.replace('_', ' ')} is too long ({len(reply.strip())} characters, at most 1000)"


def test_max_length_is_the_slots_own_and_inclusive():
    short = spec("text", max_length=5)
    assert validate("code", short, "abcde").ok and validate("code", short, "  abcde  ").ok  # stripped first
    check = validate("code", short, "abcdef")
    assert check.too_long and check.problem == "the code is too long (6 characters, at most 5)"
    assert from_bare_reply(short, "it's abcdefgh.") == "it's abcdefgh."  # too long to unwrap: refused as it is
    assert validate("email", spec("email"), "a" * 990 + "@example.com").too_long
    assert validate("email", spec("email"), "a" * 900 + "@example.com").ok
    with pytest.raises(ValueError):
        spec("text", max_length=0)


def test_the_built_in_finders_take_linear_time():
    """The e-mail finder retried a run of word characters from each of its characters (quadratic): 50,000
    letters took seconds. Each finder now takes milliseconds on worst-case input far past any cap."""
    import time

    import bot.slots as slots

    hostile = ["a" * 50_000, "a." * 25_000, "a@" * 25_000, "1 " * 25_000, "1" + " " * 50_000 + "x",
               "1-" * 25_000 + "x", "my " * 16_000, "@a" * 25_000]
    for name, finder in slots._FINDERS.items():
        for text in hostile:
            started = time.perf_counter()
            finder.findall(text)
            finder.fullmatch(text)
            assert time.perf_counter() - started < 1.0, (name, text[:10])  # linear: about a millisecond


def test_long_values_are_quoted_shortened_in_the_reason():
    check = validate("order_id", spec("order_number"), "x" * 200)
    assert check.problem == f"{'x' * 57 + '...'!r} is not a valid order number (5 digits)"


def test_a_number_too_large_for_a_float_is_refused():
    check = validate("qty", spec("number"), "9" * 400 + ".5")
    assert not check.ok and check.problem.endswith("is not a valid number")
    assert validate("qty", spec("number"), "9" * 400).value == int("9" * 400)  # an int has no such limit


def test_a_backtracking_domain_regex_is_cut_off_and_the_value_refused(caplog):
    """``(a|a)+$`` takes 2^n steps on n letters and a stop: with ``re`` this value would hold the event loop for
    days; the domain's regex runs with a timeout, so the value is refused and the pattern is named in the log."""
    spec = SlotSpec(regex=r"(a|a)+$", prompt="Your code?")
    with caplog.at_level("WARNING", logger="bot.slots"):
        check = validate("code", spec, "a" * 60 + "!")
    assert not check.ok and "is not a valid code" in check.problem
    assert "(a|a)+$" in caplog.text and "refused" in caplog.text
    assert validate("code", spec, "aaaa").ok  # the same pattern still accepts what it should


# -- values from the built-in entity extractors (issue 16) -----------------------------------------

NOW = datetime(2026, 12, 2, 10, 0)  # a Wednesday


def builtin(name: str, value: str, normalized, start: int = 0) -> ParsedEntity:
    return ParsedEntity(name, value, start, start + len(value), 1.0, normalized=normalized, extractor=name)


def test_an_amount_slot_fills_from_the_first_message():
    """"send 50 bucks to evan" asked "How much money do you want to transfer?": nothing extracted the amount."""
    from nlu.config import NLUConfig
    from nlu.extractors import EntityPipeline
    from nlu.schema import IntentScore, ParseResult

    text = "send 50 bucks to evan"
    parse = ParseResult(text, IntentScore("transfer", 0.9), [], [entity("person", "evan", 17)], False)
    parse = EntityPipeline.from_config(NLUConfig(), [], warm_up=False).augment(parse, NOW)
    amount = spec("amount")
    value = from_entities("transfer_amount", amount, parse.entities)  # any name: the slot's type picks the entity
    assert value == "50 USD" and validate("transfer_amount", amount, value).value == "50 USD"
    assert from_entities("recipient", spec(entities=["person"]), parse.entities) == "evan"
    assert from_entities("transfer_amount", spec("text"), parse.entities) is None  # a text slot takes no amount


@pytest.mark.parametrize(("reply", "stored"), [
    ("fifty bucks", "50 USD"), ("€20 please", "20 EUR"), ("fifty quid", "50 GBP"), ("50", "50"), ("fifty", "50"),
    ("about 12.5 dollars", "12.50 USD"), ("50 USD", "50 USD"),
])
def test_a_bare_reply_fills_an_amount_slot(reply, stored):
    amount = spec("amount")
    assert validate("amount", amount, from_bare_reply(amount, reply, NOW), NOW).value == stored


def test_an_invalid_amount_is_refused():
    amount = spec("amount")
    check = validate("amount", amount, from_bare_reply(amount, "whatever you think"))
    assert not check.ok and check.problem == "'whatever you think' is not a valid amount"


def test_date_slots_store_the_iso_date():
    date = spec("date")
    assert validate("date", date, from_bare_reply(date, "next monday please", NOW), NOW).value == "2026-12-07"
    assert validate("date", date, from_bare_reply(date, "in 2 days", NOW), NOW).value == "2026-12-04"
    assert validate("date", date, "2026-12-07").value == "2026-12-07"  # a stored value validates as itself
    assert from_entities("date", date, [builtin("date", "tomorrow", "2026-12-03")]) == "2026-12-03"


def test_time_and_url_slots():
    time_ = spec("time")
    assert validate("time", time_, from_bare_reply(time_, "tomorrow at 3pm", NOW), NOW).value == "15:00"
    assert validate("time", time_, "15:00").value == "15:00"
    assert not validate("time", time_, "later").ok
    url = spec("url")
    assert validate("url", url, from_bare_reply(url, "it's example.com/orders.", NOW)).value == "https://example.com/orders"
    assert validate("url", url, "check my site").problem == "'check my site' is not a valid web address"


def test_numbers_phones_and_emails_are_normalised():
    number = spec("number")
    assert validate("qty", number, from_bare_reply(number, "twenty-one of them")).value == 21
    assert from_entities("qty", number, [builtin("number", "twenty-one", 21)]) == "21"
    phone = spec("phone")
    assert validate("phone", phone, from_bare_reply(phone, "call me on +44 20 7946 0958")).value == "+442079460958"
    assert validate("phone", phone, "020-1234567").value == "020-1234567"  # no country code: kept as typed
    assert validate("email", spec("email"), "Jane@Example.COM").value == "Jane@example.com"


def test_built_in_entities_of_the_wrong_shape_or_a_regex_slot_are_not_taken():
    order = spec("order_number")
    codes = [builtin("order_code", "48213", "48213"), builtin("order_code", "AB-12345", "AB-12345", 10)]
    assert from_entities("order_id", order, codes) == "48213"  # AB-12345 is no 5-digit order number
    legacy = spec("order_number", regex=r"[A-Z]\d{6}")
    assert from_entities("order_id", legacy, codes) is None  # its own regex: only its entities fill it
    model_amount = ParsedEntity("amount", "50", 0, 2, 0.9)  # the tagger's, with another slot's name
    assert from_entities("price", spec("amount"), [model_amount]) is None


@pytest.mark.parametrize("type_", ["amount", "time", "url", "number", "date"])
def test_a_long_reply_of_a_new_type_is_refused_before_any_extractor_sees_it(type_, monkeypatch):
    import bot.slots as slots

    class Refuse:
        name = "refuse"

        def extract(self, text, now):
            raise AssertionError(f"an extractor was given {len(text)} characters")

    monkeypatch.setattr(slots, "_EXTRACTORS", {k: Refuse() for k in slots._EXTRACTORS})
    slot_spec = spec(type_)
    check = validate(type_, slot_spec, from_bare_reply(slot_spec, "fifty bucks " * 10_000))
    assert not check.ok and check.too_long
