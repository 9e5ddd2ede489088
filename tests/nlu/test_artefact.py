"""Model artefact: save/load round trip and every load error names the file at fault."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from csbot.errors import ArtefactError, IncompatibleArtefactError
from nlu.artefact import MANIFEST, WEIGHTS, load_bundle, save_bundle
from nlu.inference import NLUModel


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(tiny_model_dir, target)
    return target


def test_round_trip_gives_identical_outputs(tiny_model_dir, tmp_path):
    texts = ["where is my order 48213", "hi"]
    first = NLUModel.load(tiny_model_dir, device="cpu")
    again = save_bundle(load_bundle(tiny_model_dir), tmp_path / "copy")
    second = NLUModel.load(again, device="cpu")
    a, _, _ = first.logits(texts)
    b, _, _ = second.logits(texts)
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert first.labels.to_dict() == second.labels.to_dict()
    manifest = json.loads((again / MANIFEST).read_text())
    assert manifest["format"] == 1 and manifest["kind"] == "nlu-model"
    assert set(manifest["checksums"]) >= {WEIGHTS, "labels.json"}


def test_saving_over_an_existing_model_replaces_it_whole(tiny_model_dir, tmp_path):
    out = tmp_path / "model"
    save_bundle(load_bundle(tiny_model_dir), out)
    (out / "stray.txt").write_text("old")
    save_bundle(load_bundle(tiny_model_dir), out)
    assert not (out / "stray.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temp or old dirs left


def test_missing_directory(tmp_path):
    with pytest.raises(ArtefactError, match="no such model directory") as info:
        load_bundle(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(info.value)


@pytest.mark.parametrize("name", [MANIFEST, WEIGHTS, "labels.json", "heads.json", "encoder/config.json"])
def test_missing_file_is_named(model_copy, name):
    (model_copy / name).unlink()
    with pytest.raises(ArtefactError, match="missing file") as info:
        load_bundle(model_copy)
    assert str(model_copy / name) in str(info.value)


def test_corrupt_weights_are_named(model_copy):
    path = model_copy / WEIGHTS
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtefactError, match="checksum") as info:
        load_bundle(model_copy)
    assert str(path) in str(info.value)


def test_truncated_weights_fail_cleanly_even_without_checksums(model_copy):
    path = model_copy / WEIGHTS
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ArtefactError) as info:
        load_bundle(model_copy, verify=False)
    assert str(path) in str(info.value)


def test_corrupt_json_is_named(model_copy):
    (model_copy / MANIFEST).write_text("{not json")
    with pytest.raises(ArtefactError, match="corrupt JSON") as info:
        load_bundle(model_copy)
    assert MANIFEST in str(info.value)


def test_incompatible_version_is_named(model_copy):
    path = model_copy / MANIFEST
    manifest = json.loads(path.read_text())
    manifest.update(format=99, csbot_version="9.0.0")
    path.write_text(json.dumps(manifest))
    with pytest.raises(IncompatibleArtefactError, match="format 99 by csbot 9.0.0") as info:
        load_bundle(model_copy)
    assert str(path) in str(info.value)


def test_labels_that_do_not_fit_the_weights(model_copy):
    path = model_copy / "labels.json"
    labels = json.loads(path.read_text())
    labels["intents"].append("extra")
    path.write_text(json.dumps(labels))
    with pytest.raises(ArtefactError) as info:
        load_bundle(model_copy, verify=False)
    assert "labels.json" in str(info.value)
