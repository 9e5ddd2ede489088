"""Making a bot's models ready: when ``prepare_models`` (re)trains the model and (re)builds the index.

Training itself is covered by the demo and training tests; here a stand-in manifest says what data a
model was trained on, and file times say whether the index is older than its Q&A files.
"""

from __future__ import annotations

import json
import os
import time

from csbot import ARTEFACT_FORMAT
from training.prepare import index_outdated as _index_outdated
from training.prepare import model_outdated as _model_outdated


def write_manifest(model_dir, fingerprint: str, artefact_format: int | str = ARTEFACT_FORMAT) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "csbot-model.json").write_text(json.dumps(
        {"kind": "nlu-model", "format": artefact_format, "csbot_version": "0", "data_fingerprint": fingerprint}))


def test_model_is_trained_when_missing_changed_or_incompatible(tmp_path):
    model = tmp_path / "model"
    assert "No NLU model" in _model_outdated(model, "abc")
    write_manifest(model, "abc")
    assert _model_outdated(model, "abc") is None  # trained on this very data
    assert "data changed" in _model_outdated(model, "abd")
    write_manifest(model, "abc", artefact_format="0-ancient")
    assert "incompatible csbot version" in _model_outdated(model, "abc")


def test_a_damaged_model_is_left_for_loading_to_report(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "csbot-model.json").write_text("{not json")
    assert _model_outdated(model, "abc") is None


def test_index_is_rebuilt_when_missing_or_older_than_a_qa_file(tmp_path):
    index = tmp_path / "index"
    qa = tmp_path / "qa.csv"
    qa.write_text("question,answer\nq,a\n")
    assert "No Q&A index" in _index_outdated(index, [qa])
    index.mkdir()
    (index / "csbot-index.json").write_text("{}")
    past = time.time() - 100
    os.utime(qa, (past, past))
    assert _index_outdated(index, [qa]) is None
    os.utime(qa, None)  # edited after the index was built
    assert str(qa) in _index_outdated(index, [qa])
