"""Loading and checking domain files: the demo passes; every error names the file and the key at fault."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import pytest
import yaml

from bot.domain import DomainError, check_against_model, load_domain
from bot.domain.loader import SYSTEM_TEMPLATES, placeholders
from csbot.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
DOMAIN_FILE = REPO / "configs" / "demo" / "domain.yml"
DEMO = yaml.safe_load(DOMAIN_FILE.read_text(encoding="utf-8"))


def demo() -> dict:
    return copy.deepcopy(DEMO)


def write(tmp_path: Path, data: dict | str, name: str = "domain.yml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def error_of(tmp_path: Path, data: dict | str) -> DomainError:
    path = write(tmp_path, data)
    with pytest.raises(DomainError) as info:
        load_domain(path)
    err = info.value
    assert err.path == path and str(path) in str(err) and err.key in str(err)
    return err


def test_the_demo_domain_loads():
    domain = load_domain(DOMAIN_FILE)
    assert domain.policy == "rules" and domain.thresholds.intent == 0.55 and domain.thresholds.retrieval is None
    assert (domain.handoff.max_failures, domain.handoff.template) == (2, "handoff")
    assert domain.action_timeout_seconds == 3
    assert domain.slots["order_id"].type == "order_number" and domain.slots["address"].regex
    assert domain.intents["cancel_order"].sensitive and domain.intents["greet"].chitchat
    assert domain.intents["shop_question"].retrieve and domain.intents["complaint"].handoff
    assert domain.template_name("track_order") == "track_order"
    assert domain.template_name("affirm") is None and domain.template_name("nope") is None
    assert [v.buttons[0].payload for v in domain.templates["confirm_cancel_order"]] == ["yes"]


def test_a_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="domain file not found"):
        load_domain(tmp_path / "nowhere.yml")


def warnings_of(tmp_path: Path, data: dict, caplog) -> list[str]:
    """Load ``data`` (it must load) and return the loader's warnings."""
    path = write(tmp_path, data)
    with caplog.at_level(logging.WARNING, logger="bot.domain.loader"):
        load_domain(path)
    return [r.getMessage() for r in caplog.records if r.name == "bot.domain.loader" and r.levelno == logging.WARNING]


def test_an_unknown_placeholder_in_a_template_is_a_warning_naming_file_key_and_the_escape(tmp_path, caplog):
    data = demo()
    data["templates"]["track_order"][1]["text"] = "Order {order_number} is {status}."
    [warning] = warnings_of(tmp_path, data, caplog)
    assert str(tmp_path / "domain.yml") in warning and "templates.track_order[1].text" in warning
    assert "{order_number}" in warning and "{{order_number}}" in warning and "sent as written" in warning


def test_a_helpdesk_placeholder_with_spaces_is_a_warning_and_doubled_braces_none(tmp_path, caplog):
    data = demo()
    data["templates"]["payment_methods"][0]["text"] = "Quote {Order Number} and {{Ticket Id}}."
    [warning] = warnings_of(tmp_path, data, caplog)
    assert "templates.payment_methods[0].text" in warning and "{Order Number}" in warning
    assert "Ticket Id" not in warning  # doubled braces are literal braces, nothing to warn about


def test_unknown_placeholder_in_a_slot_prompt_or_invalid_text_is_a_warning(tmp_path, caplog):
    data = demo()
    data["slots"]["email"]["prompt"] = "Which address, {customer}?"
    data["slots"]["order_id"]["invalid"] = "Hmm, {problem}."
    warnings = warnings_of(tmp_path, data, caplog)
    assert len(warnings) == 2
    assert any("slots.email.prompt" in w and "{customer}" in w for w in warnings)
    assert any("slots.order_id.invalid" in w and "{problem}" in w for w in warnings)


def test_unknown_placeholder_in_a_button_is_a_warning(tmp_path, caplog):
    data = demo()
    data["templates"]["greet"][0]["buttons"][0]["payload"] = "track {orderid}"
    [warning] = warnings_of(tmp_path, data, caplog)
    assert "templates.greet[0].buttons[0].payload" in warning and "{orderid}" in warning


def test_the_demo_domain_loads_without_placeholder_warnings(caplog):
    with caplog.at_level(logging.WARNING, logger="bot.domain.loader"):
        load_domain(DOMAIN_FILE)
    assert not [r for r in caplog.records if r.name == "bot.domain.loader"]


def test_an_unknown_placeholder_still_refuses_real_format_errors(tmp_path):
    data = demo()
    data["templates"]["track_order"][1]["text"] = "Order {order_number!x}."
    err = error_of(tmp_path, data)
    assert err.key == "templates.track_order[1].text" and "unknown conversion" in err.reason
    data = demo()
    data["templates"]["track_order"][1]["text"] = "Order {Order Number} is {status"
    assert "invalid template text" in error_of(tmp_path, data).reason


def test_positional_and_malformed_fields_are_refused(tmp_path):
    data = demo()
    data["templates"]["payment_methods"][0]["text"] = "We take {} cards."
    err = error_of(tmp_path, data)
    assert err.key == "templates.payment_methods[0].text" and "positional" in err.reason
    data = demo()
    data["templates"]["track_order"][0]["text"] = "Order {order_id is {status}"
    err = error_of(tmp_path, data)
    assert err.key == "templates.track_order[0].text" and "invalid template text" in err.reason
    assert placeholders("{{literal}} {a.b} {c[0]} {d!r} {e:>4}") == {"a", "c", "d", "e"}


def test_unknown_required_slot(tmp_path):
    data = demo()
    data["intents"]["track_order"]["required_slots"] = ["order_id", "postcode"]
    err = error_of(tmp_path, data)
    assert err.key == "intents.track_order.required_slots" and "'postcode'" in err.reason


def test_bad_regex(tmp_path):
    data = demo()
    data["slots"]["address"]["regex"] = "([0-9]+"
    err = error_of(tmp_path, data)
    assert err.key == "slots.address.regex" and "invalid regular expression" in err.reason


@pytest.mark.parametrize("dotted", ["bot.demo.no_such_module:lookup_order", "bot.demo.actions:no_such_action",
                                    "bot.demo.actions.no_such_action", "lookup_order"])
def test_an_action_path_that_does_not_import(tmp_path, dotted):
    data = demo()
    data["intents"]["track_order"]["action"] = dotted
    err = error_of(tmp_path, data)
    assert err.key == "intents.track_order.action" and "cannot import" in err.reason and dotted in err.reason


def test_an_action_module_that_fails_while_importing(tmp_path, monkeypatch):
    (tmp_path / "exploding_actions.py").write_text("raise RuntimeError('no database configured')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    data = demo()
    data["intents"]["track_order"]["action"] = "exploding_actions:lookup"
    err = error_of(tmp_path, data)
    assert err.key == "intents.track_order.action" and "no database configured" in err.reason


def test_a_non_async_action_or_hook(tmp_path, monkeypatch):
    (tmp_path / "sync_actions.py").write_text("def lookup(slots, session):\n    return {}\nvalue = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    data = demo()
    data["intents"]["track_order"]["action"] = "sync_actions:lookup"
    err = error_of(tmp_path, data)
    assert err.key == "intents.track_order.action" and "async" in err.reason
    data = demo()
    data["handoff"]["hook"] = "sync_actions.lookup"
    assert error_of(tmp_path, data).key == "handoff.hook"
    data = demo()
    data["intents"]["track_order"]["action"] = "sync_actions:value"  # not even callable
    assert "not callable" in error_of(tmp_path, data).reason


def test_a_sensitive_intent_needs_a_confirmation_template(tmp_path):
    data = demo()
    del data["templates"]["confirm_cancel_order"]
    err = error_of(tmp_path, data)
    assert err.key == "intents.cancel_order.confirm" and "'confirm_cancel_order'" in err.reason
    data["intents"]["cancel_order"]["confirm"] = "confirm_change_address"  # an explicit, existing one is fine
    load_domain(write(tmp_path, data))
    data["intents"]["cancel_order"]["confirm"] = "are_you_sure"
    assert "'are_you_sure'" in error_of(tmp_path, data).reason


def test_templates_named_by_intents_and_handoff_must_exist(tmp_path):
    data = demo()
    data["intents"]["track_order"]["template"] = "order_status"
    assert error_of(tmp_path, data).key == "intents.track_order.template"
    data = demo()
    data["intents"]["track_order"]["alternatives"] = ["order_not_found", "order_lost"]
    err = error_of(tmp_path, data)
    assert err.key == "intents.track_order.alternatives" and "'order_lost'" in err.reason
    data = demo()
    data["handoff"]["template"] = "agent_joins"
    assert error_of(tmp_path, data).key == "handoff.template"
    data = demo()
    data["templates"]["greet"] = []
    assert error_of(tmp_path, data).key == "templates.greet"


def test_invalid_yaml_names_the_line(tmp_path):
    text = 'version: 1\nslots:\n  order_id:\n    prompt: "What?"\n  email: [unclosed\nintents: {}\n'
    err = error_of(tmp_path, text)
    assert err.key == "line 6" and "invalid YAML" in err.reason


def test_unknown_keys_and_bad_values_are_named(tmp_path):
    data = demo()
    data["colours"] = {"primary": "red"}
    err = error_of(tmp_path, data)
    assert err.key == "colours" and "Extra inputs are not permitted" in err.reason
    data = demo()
    data["intents"]["track_order"]["sensitve"] = True
    assert error_of(tmp_path, data).key == "intents.track_order.sensitve"
    data = demo()
    data["handoff"]["max_failures"] = 0
    assert error_of(tmp_path, data).key == "handoff.max_failures"
    data = demo()
    data["slots"]["email"]["type"] = "postcode"
    assert error_of(tmp_path, data).key == "slots.email.type"
    assert error_of(tmp_path, "- just\n- a list\n").key == "(top level)"


def test_check_against_model(tmp_path):
    domain = load_domain(DOMAIN_FILE)
    intents = list(domain.intents)
    check_against_model(domain, intents, DOMAIN_FILE)  # system templates, alternatives and confirmations pass
    assert {"fallback", "clarify", "retrieved", "resume", "error"} <= set(domain.templates) & set(SYSTEM_TEMPLATES)
    assert "order_not_found" in domain.templates and "order_not_found" not in intents
    assert "confirm_cancel_order" in domain.templates

    with pytest.raises(DomainError) as info:
        check_against_model(domain, [i for i in intents if i != "complaint"], DOMAIN_FILE)
    assert info.value.key == "intents.complaint" and str(DOMAIN_FILE) in str(info.value)

    data = demo()
    data["templates"]["refund_status"] = [{"text": "Your refund is on its way."}]
    data["templates"]["ask_postcode"] = [{"text": "Which postcode?"}]  # ask_* templates are the bot's own
    path = write(tmp_path, data)
    extended = load_domain(path)
    with pytest.raises(DomainError) as info:
        check_against_model(extended, intents, path)
    assert info.value.key == "templates.refund_status" and str(path) in str(info.value)
    check_against_model(extended, [*intents, "refund_status"], path)


# -- hardening (issue 12): fields that cannot render, strict YAML, empty and hostile files ----------------


@pytest.mark.parametrize(("text", "hint"), [
    ("Order {order_id!x}.", "unknown conversion '!x'"),
    ("You asked about {intent!x}.", "unknown conversion '!x'"),
    ("Order {order_id:%Q}.", "cannot render"),
    ("Order {order_id:.2f}.", "cannot render"),  # a slot is text: a number's spec fails at every reply
    ("Order {order_id[0]}.", "attribute or index access"),
    ("Order {order_id.real}.", "attribute or index access"),
    ("Order {order_id.__class__.__mro__}.", "attribute or index access"),
    ("Order {order_id:>99999999}.", "width or precision"),
    ("Order {order_id:{status}}.", "inside its format spec"),
    ("Order {0}.", "positional"),
])
def test_template_fields_that_cannot_render_are_refused_at_load(tmp_path, text, hint):
    data = demo()
    data["templates"]["track_order"][1]["text"] = text
    err = error_of(tmp_path, data)
    assert err.key == "templates.track_order[1].text" and hint in err.reason


def test_template_fields_that_render_are_accepted(tmp_path):
    data = demo()
    data["templates"]["track_order"][1]["text"] = "Order {order_id!r:>12} is {status:^20}; {eta!s} {carrier:.2f}"
    data["slots"]["email"]["prompt"] = "Which e-mail, {intent!a}?"
    domain = load_domain(write(tmp_path, data))  # {carrier:.2f}: an action's variable may be a number
    assert "{carrier:.2f}" in domain.templates["track_order"][1].text


def test_a_key_given_twice_in_a_domain_file_names_the_line(tmp_path):
    text = DOMAIN_FILE.read_text(encoding="utf-8") + "templates:\n  greet:\n    - text: hi\n"
    err = error_of(tmp_path, text)
    assert "duplicate key 'templates'" in err.reason and err.key == f"line {len(text.splitlines()) - 2}"
    err = error_of(tmp_path, "intents:\n  greet: {chitchat: true, chitchat: false}\n")
    assert "duplicate key 'chitchat'" in err.reason and err.key == "line 2"


@pytest.mark.parametrize("raw", [
    "intents: {greet: {}}\ntemplates:\n  greet:\n    - text: caf\xe9\n".encode("latin-1"),
    b"\xff\xfeintents: {}\n",
])
def test_a_domain_file_that_is_not_utf8_is_a_domain_error_naming_it(tmp_path, raw):
    path = tmp_path / "domain.yml"
    path.write_bytes(raw)
    with pytest.raises(DomainError) as info:
        load_domain(path)
    assert str(path) in str(info.value) and "UTF-8" in str(info.value)


def test_a_domain_file_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "domain.yml"
    path.write_bytes(b"\xef\xbb\xbf" + DOMAIN_FILE.read_bytes())
    assert load_domain(path).intents.keys() == load_domain(DOMAIN_FILE).intents.keys()


@pytest.mark.parametrize("text", ["", "# a domain, one day\n", "{}\n"])
def test_an_empty_domain_file_is_refused(tmp_path, text):
    assert "empty" in error_of(tmp_path, text).reason


@pytest.mark.parametrize("text", [
    "intents:\n  greet: {threshold: 1" + "0" * 5000 + "}\n",
    "intents: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "intents: &a [*a]\n",
    "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
    "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
    "intents: [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n",
    'slots:\n  order_id: {prompt: "which?\\ud800"}\n',
    "intents:\n  greet: {threshold: 2001-02-30}\n",
])
def test_hostile_yaml_is_a_domain_error_naming_the_file(tmp_path, text):
    assert "invalid YAML" in error_of(tmp_path, text).reason


def test_a_misspelt_section_gets_a_did_you_mean(tmp_path):
    data = demo()
    data["intens"] = data.pop("intents")
    err = error_of(tmp_path, data)
    assert err.key == "intens" and "did you mean intents?" in err.reason
    data = demo()
    data["intents"]["track_order"]["sensitve"] = True
    assert "did you mean sensitive?" in error_of(tmp_path, data).reason
