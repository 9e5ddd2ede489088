"""Model artefact: save/load round trip, every load error names the file at fault, saving never deletes a
directory that is not a model, and the tokenizer is covered by the checksums."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from csbot import ARTEFACT_FORMAT
from csbot.artefacts import ArtefactInfo, parse_created, read_manifest, sha256_file, stamp, write_json
from csbot.errors import ArtefactError, ConfigError, IncompatibleArtefactError
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
    with pytest.raises(IncompatibleArtefactError, match=r"format 99 by csbot 9\.0\.0") as info:
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


# -- versions ---------------------------------------------------------------------------------------

VERSION = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")


def test_a_saved_model_has_a_version_and_creation_time(tiny_model_dir, tmp_path):
    bundle = load_bundle(tiny_model_dir)
    out = save_bundle(bundle, tmp_path / "copy")
    manifest = json.loads((out / MANIFEST).read_text())
    assert VERSION.match(manifest["version"])
    created = datetime.fromisoformat(manifest["created"])
    assert created.tzinfo is not None and abs(datetime.now(UTC) - created) < timedelta(minutes=5)
    assert manifest["version"].startswith(created.strftime("%Y%m%dT%H%M%SZ"))
    assert bundle.info is not None and bundle.info.version == manifest["version"]
    assert bundle.info.path == out / MANIFEST and bundle.info.kind == "nlu-model"

    model = NLUModel.load(out, device="cpu")
    again = NLUModel.load(out, device="cpu")
    assert model.version == again.version == manifest["version"]
    assert model.created == again.created == created
    assert model.info.format == ARTEFACT_FORMAT and model.info.created_iso == manifest["created"]
    assert model.info.to_dict()["version"] == model.version


def test_two_saves_get_different_versions_that_sort_by_time(tiny_model_dir, tmp_path):
    first = save_bundle(load_bundle(tiny_model_dir), tmp_path / "a")
    bundle = load_bundle(tiny_model_dir)
    bundle.fingerprint = "other data"
    second = save_bundle(bundle, tmp_path / "b")
    a, b = (json.loads((d / MANIFEST).read_text())["version"] for d in (first, second))
    assert a != b and a[:16] <= b[:16]


def test_a_model_without_a_version_still_loads_with_a_derived_one(model_copy):
    path = model_copy / MANIFEST
    manifest = json.loads(path.read_text())
    del manifest["version"]  # as written before versions existed
    manifest["created"] = "2025-03-04T05:06:07Z"
    path.write_text(json.dumps(manifest))
    first = NLUModel.load(model_copy, device="cpu")
    assert VERSION.match(first.version) and first.version.startswith("20250304T050607Z-")
    assert first.created == datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert NLUModel.load(model_copy, device="cpu").version == first.version  # the same every time


def test_an_unsaved_model_has_no_version(tiny_model_dir):
    bundle = load_bundle(tiny_model_dir)
    bundle.info = None
    model = NLUModel(bundle, device="cpu")
    assert model.version == "" and model.created is None and model.info is None


def test_incompatible_format_names_the_file_and_both_format_numbers(model_copy):
    path = model_copy / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["format"] = ARTEFACT_FORMAT + 1
    path.write_text(json.dumps(manifest))
    with pytest.raises(IncompatibleArtefactError) as info:
        NLUModel.load(model_copy, device="cpu")
    message = str(info.value)
    assert str(path) in message and info.value.path == path
    assert f"saved in artefact format {ARTEFACT_FORMAT + 1}" in message
    assert f"reads artefact format {ARTEFACT_FORMAT}" in message


def test_an_invalid_creation_time_is_named(model_copy):
    path = model_copy / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["created"] = "last tuesday"
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtefactError, match="invalid 'created' time") as info:
        load_bundle(model_copy, verify=False)
    assert info.value.path == path


def test_an_unknown_pooling_in_the_heads_is_named(model_copy):
    path = model_copy / "heads.json"
    heads = json.loads(path.read_text())
    heads["pooling"] = "max"
    path.write_text(json.dumps(heads))
    with pytest.raises(ArtefactError, match="pooling") as info:
        load_bundle(model_copy, verify=False)
    assert info.value.path == path


def test_artefact_info_reads_a_manifest(tmp_path):
    path = tmp_path / "csbot-model.json"
    manifest = stamp({"kind": "nlu-model", "data_fingerprint": "abc", "checksums": {}})
    write_json(path, manifest)
    saved, info = read_manifest(path, "nlu-model", "NLU model", "retrain")
    assert saved == manifest
    assert info == ArtefactInfo("nlu-model", manifest["version"], parse_created(manifest["created"]), ARTEFACT_FORMAT,
                                path, manifest["csbot_version"])
    assert ArtefactInfo.from_manifest(manifest, path) == info
    with pytest.raises(ArtefactError, match="not a csbot Q&A index manifest"):
        read_manifest(path, "qa-index", "Q&A index", "build it again")


# -- never deleting what is not ours; the tokenizer under the checksums; the manifest schema -----------


def test_saving_refuses_a_directory_that_is_not_a_model_and_deletes_nothing(tiny_model_dir, tmp_path):
    out = tmp_path / "work"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    (out / "data").mkdir()
    with pytest.raises(ConfigError, match=r"exists and is not a csbot NLU model \(it holds 2 entries\)") as info:
        save_bundle(load_bundle(tiny_model_dir), out)
    assert str(out) in str(info.value) and "give an empty or new directory" in str(info.value)
    assert (out / "thesis.tex").read_text() == "years of work" and (out / "data").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]  # no temp dir, no lock file


def test_saving_refuses_an_index_directory(tiny_model_dir, tmp_path):
    index = tmp_path / "index"
    index.mkdir()
    write_json(index / "csbot-index.json", stamp({"kind": "qa-index", "dimension": 4, "checksums": {}}))
    with pytest.raises(ConfigError, match="is a csbot Q&A index, not an NLU model"):
        save_bundle(load_bundle(tiny_model_dir), index)
    assert (index / "csbot-index.json").is_file()


def test_saving_into_an_empty_directory(tiny_model_dir, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    save_bundle(load_bundle(tiny_model_dir), out)
    assert (out / MANIFEST).is_file()


def test_the_tokenizer_files_are_under_the_checksums(tiny_model_dir):
    checksums = json.loads((tiny_model_dir / MANIFEST).read_text())["checksums"]
    tokenizer_files = {p.relative_to(tiny_model_dir).as_posix() for p in (tiny_model_dir / "tokenizer").rglob("*")
                       if p.is_file()}
    assert tokenizer_files and tokenizer_files <= set(checksums)


def test_a_tokenizer_of_another_encoder_is_named(model_copy):
    tokenizer = load_bundle(model_copy).tokenizer
    other = tokenizer.train_new_from_iterator(["where is my order", "cancel my subscription"] * 20, vocab_size=200)
    shutil.rmtree(model_copy / "tokenizer")
    other.save_pretrained(str(model_copy / "tokenizer"))
    with pytest.raises(ArtefactError, match="checksum does not match") as info:
        load_bundle(model_copy)
    assert info.value.path.parent == model_copy / "tokenizer"


def test_a_file_added_to_the_tokenizer_is_named(model_copy):
    added = model_copy / "tokenizer" / "added_tokens.json"
    added.write_text('{"[NEW]": 30522}')
    with pytest.raises(ArtefactError, match="does not list") as info:
        load_bundle(model_copy)
    assert info.value.path == added


def without_tokenizer_checksums(model_dir):
    """The manifest as csbot wrote it before the tokenizer files had checksums."""
    path = model_dir / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["checksums"] = {k: v for k, v in manifest["checksums"].items() if not k.startswith("tokenizer/")}
    path.write_text(json.dumps(manifest))


def test_a_model_saved_without_tokenizer_checksums_still_loads(model_copy):
    without_tokenizer_checksums(model_copy)
    model = NLUModel.load(model_copy, device="cpu")
    assert model.parse(["where is my order 48213"])[0].to_dict()["intent"]["name"]


def test_a_tokenizer_larger_than_the_encoder_is_refused_even_without_checksums(model_copy):
    without_tokenizer_checksums(model_copy)
    tokenizer = load_bundle(model_copy).tokenizer
    tokenizer.add_tokens(["zorblax", "quuxotic"])  # ids beyond the encoder's embeddings: an IndexError at parse
    shutil.rmtree(model_copy / "tokenizer")
    tokenizer.save_pretrained(str(model_copy / "tokenizer"))
    with pytest.raises(ArtefactError, match="30524 tokens but the encoder only 30522") as info:
        load_bundle(model_copy)
    assert info.value.path == model_copy / "tokenizer"


def test_a_checksum_entry_outside_the_directory_is_refused(model_copy, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("not part of the model")
    path = model_copy / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["checksums"]["../outside.txt"] = sha256_file(outside)
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtefactError, match=r"invalid manifest: checksums.*not a relative path inside") as info:
        load_bundle(model_copy)
    assert info.value.path == path


@pytest.mark.parametrize(("field", "value"), [("checksums", ["model.safetensors"]), ("base_model", ["x"]),
                                              ("data_fingerprint", 7), ("checksums", {"/etc/hostname": "0" * 64})])
def test_a_malformed_manifest_names_the_file_and_the_field(model_copy, field, value):
    path = model_copy / MANIFEST
    manifest = json.loads(path.read_text())
    manifest[field] = value
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtefactError, match=f"invalid manifest: {field}") as info:
        load_bundle(model_copy)
    assert info.value.path == path
