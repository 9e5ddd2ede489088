"""The builder's guide holds the domain and ``bot:`` config references exactly as generated from the schemas."""

from __future__ import annotations

from conftest import REPO

from bot.domain.reference import (
    BOT_CONFIG_MARKERS,
    DOMAIN_MARKERS,
    bot_config_reference,
    domain_reference,
    main,
    marked_block,
    refresh,
)
from bot.domain.schema import Domain, IntentSpec, SlotSpec

GUIDE = REPO / "docs" / "build-your-bot.md"


def test_the_guide_holds_the_generated_references():
    text = GUIDE.read_text(encoding="utf-8")
    hint = "run: python -m bot.domain.reference --write docs/build-your-bot.md"
    assert marked_block(text, DOMAIN_MARKERS) == domain_reference(), hint
    assert marked_block(text, BOT_CONFIG_MARKERS) == bot_config_reference(), hint
    assert "## Coming from Rasa" in text


def test_every_key_of_the_schema_is_in_the_reference():
    reference = domain_reference()
    for model in (Domain, SlotSpec, IntentSpec):
        for name in model.model_fields:
            assert f"| `{name}` |" in reference, name
    assert "| `action_timeout_seconds` | number | `5.0` |" in reference
    assert "| `prompt` | text | `required` |" in reference


def test_a_stale_block_is_found_and_rewritten(tmp_path, capsys):
    guide = tmp_path / "guide.md"
    stale = GUIDE.read_text(encoding="utf-8").replace("| `retrieve` |", "| `retrieve_old` |")
    guide.write_text(stale, encoding="utf-8")
    assert main(["--check", str(guide)]) == 1
    assert "--write" in capsys.readouterr().err
    assert main(["--write", str(guide)]) == 0
    assert guide.read_text(encoding="utf-8") == refresh(stale) == GUIDE.read_text(encoding="utf-8")
    assert main(["--check", str(guide)]) == 0


def test_every_model_of_the_schema_has_a_section():
    import inspect

    from pydantic import BaseModel

    import bot.domain.schema as schema
    from bot.domain.reference import DOMAIN_SECTIONS

    covered = {model for _, model in DOMAIN_SECTIONS}
    models = [c for name, c in vars(schema).items() if inspect.isclass(c) and issubclass(c, BaseModel)
              and c.__module__ == schema.__name__ and not name.startswith("_")]
    assert models and [m.__name__ for m in models if m not in covered] == []
