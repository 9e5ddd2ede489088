"""Rendering: the domain's texts are templates, everything filled into them is data (issue 12)."""

from __future__ import annotations

import logging
import random

import pytest

from bot.domain.schema import Domain, VariantSpec
from bot.render import DEFAULT_TEXTS, Renderer, fill
from bot.sessions.state import SessionState

HOSTILE = ["{", "}", "{0}", "{}", "{slot.__class__.__mro__}", "{reason}", "{order_id!r:>99}", "%s %(x)s", "{{x}}",
           "\udcff", "\x00\x1b[2J"]


@pytest.mark.parametrize("value", HOSTILE)
def test_values_are_put_in_as_text_never_parsed(value):
    assert fill("Sorry, {reason}.", {"reason": value}) == f"Sorry, {value}."
    assert fill("{a}{b}", {"a": value, "b": value}) == value + value


def test_conversions_and_format_specs_of_the_domains_own_texts():
    assert fill("{n:>4}|{n!r}|{s!r}|{s!a}|{x:.2f}", {"n": 7, "s": "é", "x": 2.5}) == "   7|7|'é'|'\\xe9'|2.50"
    assert fill("{{literal}} {name}", {"name": "Ann"}) == "{literal} Ann"


def test_a_placeholder_may_only_name_a_value(caplog):
    values = {"slot": "order_id", "items": ["a", "b"]}
    with caplog.at_level(logging.WARNING, logger="bot.render"):
        assert fill("[{slot.__class__.__mro__}] [{items[0]}] [{0}] [{}]", values) == "[] [] [] []"
    assert "not a plain name" in caplog.text


def test_what_cannot_be_formatted_is_sent_plainly(caplog):
    with caplog.at_level(logging.WARNING, logger="bot.render"):
        assert fill("{qty:.2f} items", {"qty": "three"}) == "three items"  # a spec that does not suit the value
        assert fill("[{name:>99999999}]", {"name": "x"}) == "[x]"  # a huge width is not built
        assert fill("[{name:{width}}]", {"name": "x", "width": "99999999"}) == "[x]"  # nor one from a value
        assert fill("[{missing}]", {}) == "[]"
        assert fill("an unbalanced { brace", {}) == "an unbalanced { brace"
    assert "has no value" in caplog.text and "not a valid format string" in caplog.text


def domain() -> Domain:
    return Domain(templates={
        "greet": [VariantSpec(text="Hi {name}!",
                              buttons=[{"title": "Track {order_id}", "payload": "track {order_id}"}])],
        "two": [VariantSpec(text="one"), VariantSpec(text="two")],
    })


def test_render_fills_slots_and_variables_as_data_in_text_and_buttons():
    renderer = Renderer(domain(), random.Random(0))
    state = SessionState("s", slots={"order_id": "{0}", "name": "{order_id}"})
    message = renderer.render("greet", state)
    assert message.text == "Hi {order_id}!"
    assert [(b.title, b.payload) for b in message.buttons] == [("Track {0}", "track {0}")]
    assert renderer.render("greet", state, {"name": ["a", "{b}"]}).text == "Hi a, {b}!"  # a list: joined


def test_render_default_texts_and_unknown_names():
    renderer = Renderer(domain())
    state = SessionState("s")
    invalid = renderer.render("invalid_value", state, {"reason": "'{0}' is not valid"})
    assert invalid.text == "Sorry, '{0}' is not valid."
    assert renderer.render("session_reset", state).text == DEFAULT_TEXTS["session_reset"]
    # its name, filled like any text: a placeholder that names no slot or variable is sent as written
    assert renderer.render("no_such_{template}", state).text == "no_such_{template}"
    seen = {renderer.render("two", state).text for _ in range(4)}
    assert seen == {"one", "two"}  # variants alternate


def test_text_takes_the_customers_words_only_as_variables():
    renderer = Renderer(domain())
    state = SessionState("s", slots={"order_id": "48213"})
    message = renderer.text("Hmm, {reason}. Order {order_id}?", state, {"reason": "'{slot.__class__}' is not valid"})
    assert message.text == "Hmm, '{slot.__class__}' is not valid. Order 48213?"


def test_a_placeholder_naming_no_slot_or_variable_is_sent_as_written(caplog):
    known = {"order_id", "reason"}
    text = "Quote {Order Number}, {ticket!r:>8}, {{Ref}} and {order_id}; {reason}."
    assert fill(text, {"order_id": "48213"}, known) == "Quote {Order Number}, {ticket!r:>8}, {Ref} and 48213; ."
    with caplog.at_level(logging.WARNING, logger="bot.render"):  # references are still never spelled back
        assert fill("[{a.b}] [{c[0]}] [{0}]", {}, known) == "[] [] []"
    assert fill("[{Order Number}]", {}) == "[]"  # without ``known``, as before: blank


def test_render_sends_an_unknown_placeholder_as_written_and_fills_the_known_ones():
    templates = {"answer": [VariantSpec(text="Give us your {{Order Number}} or {Order Number}, {order_id}.",
                                        image="https://cdn.example/{size}.png",
                                        buttons=[{"title": "Use {order_id}", "payload": "{Ticket}"}])]}
    renderer = Renderer(Domain(slots={"order_id": {"type": "text", "prompt": "Which order?"}}, templates=templates))
    message = renderer.render("answer", SessionState("s", slots={"order_id": "48213"}))
    assert message.text == "Give us your {Order Number} or {Order Number}, 48213."
    assert message.image == "https://cdn.example/{size}.png"
    assert [(b.title, b.payload) for b in message.buttons] == [("Use 48213", "{Ticket}")]
    assert renderer.render("answer", SessionState("s")).text == "Give us your {Order Number} or {Order Number}, ."
