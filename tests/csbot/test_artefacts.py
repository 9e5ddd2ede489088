"""Artefact writing never deletes what csbot did not write, creates files with the umask, and serialises edits;
manifests are validated with a schema that keeps checksum entries inside the artefact directory.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time

import pytest

from csbot.artefact_dirs import artefact_lock, atomic_directory, check_out_dir, lock_path
from csbot.artefacts import ArtefactManifest, check_files, read_manifest, sha256_file, stamp, write_json
from csbot.errors import ArtefactError, ConfigError


def make_artefact(directory, kind="nlu-model", manifest="csbot-model.json"):
    directory.mkdir(parents=True)
    write_json(directory / manifest, stamp({"kind": kind, "checksums": {}}))
    (directory / "weights.bin").write_bytes(b"old")
    return directory


def user_files(directory):
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("notes.txt", "thesis.tex"):
        (directory / name).write_text(f"my {name}")
    (directory / "src").mkdir()
    (directory / "src" / "main.py").write_text("print('precious')")
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def contents(directory):
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


# -- check_out_dir ---------------------------------------------------------------------------------


def test_new_and_empty_directories_are_accepted(tmp_path):
    assert check_out_dir(tmp_path / "new" / "model", "nlu-model") == tmp_path / "new" / "model"
    (tmp_path / "empty").mkdir()
    assert check_out_dir(tmp_path / "empty", "qa-index") == tmp_path / "empty"


def test_an_artefact_of_the_same_kind_is_accepted(tmp_path):
    model = make_artefact(tmp_path / "model")
    assert check_out_dir(model, "nlu-model") == model


def test_a_directory_of_other_files_is_refused_naming_it_and_its_entries(tmp_path):
    before = user_files(tmp_path / "work")
    with pytest.raises(ConfigError) as info:
        check_out_dir(tmp_path / "work", "nlu-model")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'work'}: exists and is not a csbot NLU model (it holds 3 entries)")
    assert "give an empty or new directory" in message
    assert contents(tmp_path / "work") == before


def test_an_artefact_of_another_kind_is_refused(tmp_path):
    index = make_artefact(tmp_path / "index", "qa-index", "csbot-index.json")
    with pytest.raises(ConfigError, match="is a csbot Q&A index, not an NLU model"):
        check_out_dir(index, "nlu-model")


def test_a_manifest_of_the_wrong_kind_or_unreadable_is_not_enough(tmp_path):
    fake = make_artefact(tmp_path / "fake", kind="something-else")
    with pytest.raises(ConfigError, match="not a csbot NLU model"):
        check_out_dir(fake, "nlu-model")
    (fake / "csbot-model.json").write_text("{broken")
    with pytest.raises(ConfigError, match="not a csbot NLU model"):
        check_out_dir(fake, "nlu-model")


def test_a_file_and_the_root_are_refused(tmp_path):
    (tmp_path / "file").write_text("keep me")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        check_out_dir(tmp_path / "file", "qa-index")
    with pytest.raises(ConfigError, match="file system root"):
        check_out_dir("/", "qa-index")


# -- atomic_directory ------------------------------------------------------------------------------


def test_atomic_directory_refuses_a_foreign_directory_and_deletes_nothing(tmp_path):
    before = user_files(tmp_path / "work")
    with pytest.raises(ConfigError), atomic_directory(tmp_path / "work", kind="qa-index") as tmp:
        (tmp / "csbot-index.json").write_text("{}")  # pragma: no cover - never reached
    assert contents(tmp_path / "work") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]  # no temp dir or lock file left


def test_atomic_directory_replaces_an_artefact_of_the_same_kind_whole(tmp_path):
    model = make_artefact(tmp_path / "model")
    with atomic_directory(model, kind="nlu-model") as tmp:
        write_json(tmp / "csbot-model.json", stamp({"kind": "nlu-model", "checksums": {}}))
        (tmp / "new.bin").write_bytes(b"new")
    assert sorted(p.name for p in model.iterdir()) == ["csbot-model.json", "new.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_atomic_directory_checks_again_before_the_swap(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ConfigError), atomic_directory(out, kind="nlu-model") as tmp:
        (tmp / "csbot-model.json").write_text("{}")
        (out / "arrived-meanwhile.txt").write_text("someone else's")
    assert (out / "arrived-meanwhile.txt").read_text() == "someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_artefacts_are_created_with_the_umask_not_private(tmp_path, umask_022):
    out = tmp_path / "model"
    with atomic_directory(out, kind="nlu-model") as tmp:
        (tmp / "sub").mkdir()
        write_json(tmp / "csbot-model.json", stamp({"kind": "nlu-model", "checksums": {}}))
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "sub").stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "csbot-model.json").stat().st_mode) == 0o644


# -- the lock --------------------------------------------------------------------------------------


def test_the_lock_is_beside_the_artefact_reentrant_and_removed_after(tmp_path):
    target = tmp_path / "index"
    assert lock_path(target) == tmp_path / ".index.lock"
    with artefact_lock(target) as lock:
        assert lock.is_file()
        with artefact_lock(target):  # the same thread may take it again (a save inside an edit)
            pass
        assert lock.is_file()
    assert not lock.exists()


def test_the_lock_serialises_threads(tmp_path):
    target, inside, overlaps = tmp_path / "index", [], []

    def work():
        with artefact_lock(target):
            inside.append(1)
            if len(inside) > 1:
                overlaps.append(1)
            time.sleep(0.05)
            inside.pop()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == [] and not lock_path(target).exists()


def test_the_lock_excludes_another_process(tmp_path):
    import subprocess
    import sys

    target = tmp_path / "index"
    code = ("import sys, time; from csbot.artefact_dirs import artefact_lock\n"
            "with artefact_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(1.5)\n")
    child = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with artefact_lock(target):
            waited = time.monotonic() - started
    finally:
        child.wait(30)
    assert waited > 0.5  # it waited for the other process to let go


# -- the manifest schema ---------------------------------------------------------------------------


def write_manifest(tmp_path, **changes):
    manifest = stamp({"kind": "nlu-model", "checksums": {"weights.bin": "0" * 64}})
    manifest.update(changes)
    path = tmp_path / "csbot-model.json"
    path.write_text(json.dumps(manifest))
    return path


@pytest.mark.parametrize(("changes", "field"), [
    ({"checksums": {"../outside.txt": "0" * 64}}, "checksums"),
    ({"checksums": {"/etc/passwd": "0" * 64}}, "checksums"),
    ({"checksums": {"a/../../b": "0" * 64}}, "checksums"),
    ({"checksums": {".": "0" * 64}}, "checksums"),
    ({"checksums": {"weights.bin": 5}}, "checksums.'weights.bin'"),
    ({"checksums": ["weights.bin"]}, "checksums"),
    ({"created": 20250101}, "created"),
    ({"version": ["v1"]}, "version"),
    ({"csbot_version": 1.0}, "csbot_version"),
])
def test_a_malformed_manifest_names_the_file_and_the_field(tmp_path, changes, field):
    path = write_manifest(tmp_path, **changes)
    with pytest.raises(ArtefactError, match="invalid manifest") as info:
        read_manifest(path, "nlu-model", "NLU model", "retrain")
    assert info.value.path == path
    assert f"invalid manifest: {field}" in str(info.value)


def test_extra_manifest_keys_are_kept(tmp_path):
    path = write_manifest(tmp_path, base_model="x", future_key={"a": 1})
    manifest, _ = read_manifest(path, "nlu-model", "NLU model", "retrain", ArtefactManifest)
    assert manifest["future_key"] == {"a": 1}


def test_check_files_refuses_a_link_that_leads_outside(tmp_path):
    root = tmp_path / "artefact"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("outside")
    (root / "weights.bin").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(ArtefactError, match="leads outside the artefact directory") as info:
        check_files(root, root / "csbot-model.json", {"weights.bin": sha256_file(tmp_path / "secret.txt")})
    assert info.value.path == root / "weights.bin"
    with pytest.raises(ArtefactError, match="not a relative path inside") as info:
        check_files(root, root / "csbot-model.json", {"../secret.txt": sha256_file(tmp_path / "secret.txt")})
    assert info.value.path == root / "csbot-model.json"
