"""The directory registry: register, list, promote, roll back, reject; generation; validation; atomic writes and
locking; corrupt or unwritable registries."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from csbot.artefacts import sha256_file, stamp, write_json
from csbot.errors import ConfigError, PromotionRefusedError, RegistryError, UnknownVersionError
from csbot.registry import (
    DirectoryRegistry,
    Registry,
    RegistryConfig,
    VersionEntry,
    artefact_kind,
    create_registry,
    gate_refusal,
)


def make_artefact(path: Path, kind: str = "model", payload: bytes = b"weights", *, created: str = "2026-03-01T10:00:00Z",
                  version: str | None = None) -> str:
    """A minimal artefact of ``kind`` in ``path`` (a manifest and one file with its checksum); returns its version."""
    manifest_name, manifest_kind = {"model": ("csbot-model.json", "nlu-model"),
                                    "index": ("csbot-index.json", "qa-index")}[kind]
    path.mkdir(parents=True)
    (path / "sub").mkdir()
    (path / "sub" / "data.bin").write_bytes(payload)
    manifest = {"kind": manifest_kind, "created": created,
                "checksums": {"sub/data.bin": sha256_file(path / "sub" / "data.bin")}}
    if kind == "model":
        manifest["data_fingerprint"] = "fp-" + payload.decode(errors="replace")
    else:
        manifest["dimension"] = 4
    stamp(manifest)
    if version is not None:
        manifest["version"] = version
    write_json(path / manifest_name, manifest)
    return manifest["version"]


@pytest.fixture
def registry(tmp_path) -> DirectoryRegistry:
    return DirectoryRegistry(tmp_path / "registry")


@pytest.fixture
def artefacts(tmp_path):
    """Three NLU models (v1, v2, v3 by payload) made on demand: ``artefacts(n)`` -> (dir, version)."""
    made: dict[int, tuple[Path, str]] = {}

    def make(n: int, kind: str = "model") -> tuple[Path, str]:
        if (n, kind) not in made:
            path = tmp_path / "src" / f"{kind}-{n}"
            made[(n, kind)] = (path, make_artefact(path, kind, f"payload {n}".encode()))
        return made[(n, kind)]

    return make


def test_register_list_show_promote_rollback_round_trip(registry, artefacts):
    (d1, v1), (d2, v2), (d3, v3) = artefacts(1), artefacts(2), artefacts(3)
    e1 = registry.register("model", d1, metrics={"dev.intent_accuracy": 0.9}, note="first")
    assert (e1.kind, e1.version, e1.status) == ("model", v1, "candidate")
    assert e1.path == registry.root / "models" / v1
    assert (e1.path / "sub" / "data.bin").read_bytes() == b"payload 1"
    assert e1.data_fingerprint == "fp-payload 1"
    assert e1.created == "2026-03-01T10:00:00Z"
    registry.register("model", d2, parent=v1, metrics={"dev.intent_accuracy": 0.92})
    registry.register("model", d3, parent=v2)

    assert [e.version for e in registry.list("model")] == [v3, v2, v1]  # newest registration first
    assert registry.list("index") == []
    assert registry.current("model") is None
    shown = registry.get("model", v2)
    assert (shown.parent, shown.metrics, shown.status) == (v1, {"dev.intent_accuracy": 0.92}, "candidate")

    registry.promote("model", v1, by="ann")
    registry.promote("model", v2, by="bob", note="better")
    current = registry.current("model")
    assert (current.version, current.status, current.promoted_by, current.note) == (v2, "promoted", "bob", "better")
    assert current.promoted_at
    assert registry.get("model", v1).status == "retired"
    registry.promote("model", v3, by="cy")
    assert [e.status for e in registry.list("model")] == ["promoted", "retired", "retired"]
    assert registry.history("model") == [v2, v1]

    back = registry.rollback("model", by="dee")
    assert (back.version, back.status, back.promoted_by) == (v2, "promoted", "dee")
    assert registry.get("model", v3).status == "retired"
    assert registry.rollback("model", by="dee").version == v1
    assert registry.resolve("model").version == v1
    assert registry.resolve("model", v3).version == v3
    with pytest.raises(UnknownVersionError, match="no earlier NLU model"):
        registry.rollback("model", by="dee")
    assert registry.current("model").version == v1

    # a fresh object over the same directory reads the same state
    again = DirectoryRegistry(registry.root)
    assert [(e.version, e.status) for e in again.list("model")] == [(v3, "retired"), (v2, "retired"), (v1, "promoted")]
    assert again.get("model", v1).to_dict() == registry.get("model", v1).to_dict()
    assert [event["action"] for event in again.events()] == ["register"] * 3 + ["promote"] * 3 + ["rollback"] * 2


def test_kinds_are_kept_apart(registry, artefacts):
    (dm, vm), (di, vi) = artefacts(1, "model"), artefacts(1, "index")
    registry.register("model", dm)
    registry.register("index", di)
    registry.promote("index", vi, by="ann")
    assert registry.current("model") is None
    assert registry.current("index").version == vi
    assert registry.get("index", vi).path == registry.root / "indexes" / vi
    assert registry.get("index", vi).data_fingerprint is None
    with pytest.raises(UnknownVersionError):
        registry.get("index", vm)
    assert artefact_kind(dm) == "model" and artefact_kind(di) == "index"


def test_register_refuses_the_wrong_kind_and_non_artefacts(registry, tmp_path, artefacts):
    d_index, _ = artefacts(1, "index")
    with pytest.raises(RegistryError, match=r"csbot-index.json: a Q&A index"):
        registry.register("model", d_index)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RegistryError, match=r"no csbot-model.json"):
        registry.register("model", empty)
    with pytest.raises(RegistryError, match=r"no csbot NLU model or Q&A index|has no csbot manifest"):
        artefact_kind(empty)
    assert not registry.root.exists()  # nothing was created


def test_resolve_without_a_promoted_version_names_the_command(registry, artefacts):
    registry.register("model", artefacts(1)[0])
    with pytest.raises(UnknownVersionError, match="csbot models promote"):
        registry.resolve("model")
    with pytest.raises(UnknownVersionError, match="'missing'"):
        registry.get("model", "missing")
    with pytest.raises(UnknownVersionError):
        registry.promote("model", "missing", by="ann")


def test_generation_changes_on_promote_and_rollback_only(registry, artefacts):
    (d1, v1), (d2, v2) = artefacts(1), artefacts(2)
    seen = [registry.generation()]
    registry.register("model", d1)
    registry.register("model", d2)
    assert registry.generation() == seen[-1]  # registering changes nothing current
    registry.promote("model", v1, by="ann")
    seen.append(registry.generation())
    registry.promote("model", v1, by="ann")  # already current: no change
    assert registry.generation() == seen[-1]
    registry.promote("model", v2, by="ann")
    seen.append(registry.generation())
    registry.register("index", artefacts(1, "index")[0])
    assert registry.generation() == seen[-1]
    registry.rollback("model", by="ann")
    seen.append(registry.generation())
    registry.reject("model", v2, "worse on refunds")
    assert registry.generation() == seen[-1]
    assert len(set(seen)) == len(seen) == 4
    assert DirectoryRegistry(registry.root).generation() == seen[-1]


def test_generation_reads_registry_json_when_current_json_is_stale_or_missing(registry, artefacts):
    (d1, v1), (d2, v2) = artefacts(1), artefacts(2)
    registry.register("model", d1)
    registry.register("model", d2)
    registry.promote("model", v1, by="ann")
    before = registry.generation()
    current_file = registry.root / "current.json"
    stale = current_file.read_bytes()
    registry.promote("model", v2, by="ann")
    after = registry.generation()
    assert after != before
    # a crash between the two writes: current.json still old, registry.json newer
    current_file.write_bytes(stale)
    os.utime(current_file, ns=(1, 1))
    assert registry.generation() == after
    current_file.unlink()
    assert registry.generation() == after
    # the next write repairs current.json and never reuses a token
    registry.rollback("model", by="ann")
    assert registry.generation() not in (before, after)
    assert json.loads(current_file.read_text())["token"] == registry.generation()


def test_a_corrupt_artefact_is_refused_at_register(registry, tmp_path):
    src = tmp_path / "bad"
    make_artefact(src)
    (src / "sub" / "data.bin").write_bytes(b"tampered")
    with pytest.raises(RegistryError, match="checksum does not match") as caught:
        registry.register("model", src)
    assert "data.bin" in str(caught.value)
    assert not (registry.root / "registry.json").exists()
    assert not any((registry.root / "models").glob("*")) if (registry.root / "models").exists() else True


def test_an_artefact_without_checksums_is_refused(registry, tmp_path):
    src = tmp_path / "nosums"
    src.mkdir()
    write_json(src / "csbot-model.json", stamp({"kind": "nlu-model", "checksums": {}}))
    with pytest.raises(RegistryError, match="no checksums"):
        registry.register("model", src)


def test_a_version_corrupted_after_registration_is_refused_at_promote(registry, artefacts):
    (d1, v1), (d2, v2) = artefacts(1), artefacts(2)
    registry.register("model", d1)
    registry.register("model", d2)
    registry.promote("model", v1, by="ann")
    token = registry.generation()
    state = (registry.root / "registry.json").read_bytes()
    (registry.root / "models" / v2 / "sub" / "data.bin").write_bytes(b"bit rot")
    with pytest.raises(RegistryError, match=r"cannot promote NLU model .*checksum does not match"):
        registry.promote("model", v2, by="ann")
    assert registry.current("model").version == v1
    assert registry.get("model", v2).status == "candidate"
    assert registry.generation() == token
    assert (registry.root / "registry.json").read_bytes() == state


def test_a_manifest_changed_after_registration_is_refused_at_promote(registry, artefacts):
    d1, v1 = artefacts(1)
    registry.register("model", d1)
    manifest_path = registry.root / "models" / v1 / "csbot-model.json"
    manifest = json.loads(manifest_path.read_text())
    (registry.root / "models" / v1 / "sub" / "data.bin").write_bytes(b"swapped")
    manifest["checksums"]["sub/data.bin"] = sha256_file(registry.root / "models" / v1 / "sub" / "data.bin")
    write_json(manifest_path, manifest)  # files and checksums agree, but not with what was registered
    with pytest.raises(RegistryError, match="manifest was changed after"):
        registry.promote("model", v1, by="ann")
    assert registry.current("model") is None


def test_rollback_to_a_corrupt_version_changes_nothing(registry, artefacts):
    (d1, v1), (d2, v2) = artefacts(1), artefacts(2)
    registry.register("model", d1)
    registry.register("model", d2)
    registry.promote("model", v1, by="ann")
    registry.promote("model", v2, by="ann")
    (registry.root / "models" / v1 / "sub" / "data.bin").unlink()
    with pytest.raises(RegistryError, match="cannot roll back to NLU model"):
        registry.rollback("model", by="ann")
    assert registry.current("model").version == v2
    assert registry.history("model") == [v1]


def test_reregistering_identical_files_is_idempotent(registry, artefacts, tmp_path):
    d1, _ = artefacts(1)
    first = registry.register("model", d1, note="first")
    state = (registry.root / "registry.json").read_bytes()
    copy = tmp_path / "copy"
    make_artefact(copy, payload=b"payload 1")  # same content, same created: the same version
    again = registry.register("model", copy, note="second")
    assert again.to_dict() == first.to_dict()
    assert (registry.root / "registry.json").read_bytes() == state
    assert len(registry.list("model")) == 1


def test_different_files_under_a_held_version_are_refused(registry, artefacts, tmp_path):
    d1, v1 = artefacts(1)
    registry.register("model", d1)
    state = (registry.root / "registry.json").read_bytes()
    other = tmp_path / "other"
    make_artefact(other, payload=b"other weights", version=v1)
    with pytest.raises(RegistryError, match=r"already holds NLU model version .* other files"):
        registry.register("model", other)
    assert (registry.root / "registry.json").read_bytes() == state
    assert (registry.root / "models" / v1 / "sub" / "data.bin").read_bytes() == b"payload 1"


def test_a_version_that_cannot_name_a_directory_is_refused(registry, tmp_path):
    src = tmp_path / "weird"
    make_artefact(src, version="../escape")
    with pytest.raises(RegistryError, match="cannot be registered"):
        registry.register("model", src)
    assert not (registry.root.parent / "escape").exists()


def test_reject(registry, artefacts):
    (d1, v1), (d2, v2), (d3, v3) = artefacts(1), artefacts(2), artefacts(3)
    for d in (d1, d2, d3):
        registry.register("model", d)
    registry.promote("model", v1, by="ann")
    registry.promote("model", v2, by="ann")
    with pytest.raises(RegistryError, match="is the current version"):
        registry.reject("model", v2, "oops")
    rejected = registry.reject("model", v1, "leaks refunds")
    assert (rejected.status, rejected.note) == ("rejected", "leaks refunds")
    assert registry.history("model") == []  # never rolled back to
    with pytest.raises(UnknownVersionError):
        registry.rollback("model", by="ann")
    assert registry.reject("model", v3, "too slow").status == "rejected"


def test_gate_refusal_reads_the_recorded_gate(registry, artefacts):
    (d1, v1), (d2, _), (d3, _) = artefacts(1), artefacts(2), artefacts(3)
    failed = registry.register("model", d1, gate={"passed": False, "reasons": ["dev.intent_accuracy fell 0.03"]})
    passed = registry.register("model", d2, gate={"passed": True, "reasons": []})
    none = registry.register("model", d3)
    assert gate_refusal(failed) == ["dev.intent_accuracy fell 0.03"]
    assert gate_refusal(passed) is None and gate_refusal(none) is None
    assert registry.get("model", v1).gate == {"passed": False, "reasons": ["dev.intent_accuracy fell 0.03"]}
    assert issubclass(PromotionRefusedError, RegistryError)


def test_reading_never_writes(tmp_path, artefacts):
    missing = DirectoryRegistry(tmp_path / "nowhere")
    assert missing.list("model") == [] and missing.current("index") is None
    assert missing.generation() == DirectoryRegistry(tmp_path / "elsewhere").generation()
    assert not (tmp_path / "nowhere").exists()
    registry = DirectoryRegistry(tmp_path / "reg")
    registry.register("model", artefacts(1)[0])
    (registry.root / ".lock").unlink()
    before = {p: p.stat().st_mtime_ns for p in registry.root.rglob("*")}
    registry.list("model"), registry.current("model"), registry.generation(), registry.get("model", artefacts(1)[1])
    assert {p: p.stat().st_mtime_ns for p in registry.root.rglob("*")} == before  # no lock file, nothing touched


def test_a_read_only_registry_reads_and_refuses_writes(registry, artefacts, monkeypatch):
    (d1, v1), (d2, v2) = artefacts(1), artefacts(2)
    registry.register("model", d1)
    registry.promote("model", v1, by="ann")
    state = (registry.root / "registry.json").read_bytes()
    registry.root.chmod(0o555)
    # as root chmod does not stop writes: the permission check a user other than root meets is answered for it
    real_access = os.access
    monkeypatch.setattr("csbot.registry.state_file.os.access",
                        lambda path, mode: False if Path(path) == registry.root and mode & os.W_OK
                        else real_access(path, mode))
    try:
        assert registry.current("model").version == v1
        assert registry.generation()
        with pytest.raises(RegistryError, match="not writable") as caught:
            registry.register("model", d2)
        assert str(registry.root) in str(caught.value)
        with pytest.raises(RegistryError, match="not writable"):
            registry.promote("model", v1, by="bob")
    finally:
        registry.root.chmod(0o755)
    assert (registry.root / "registry.json").read_bytes() == state
    assert not (registry.root / "models" / v2).exists()


def test_a_registry_under_a_file_is_refused(tmp_path, artefacts):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    registry = DirectoryRegistry(blocker / "registry")
    with pytest.raises(RegistryError, match="cannot create the registry directory") as caught:
        registry.register("model", artefacts(1)[0])
    assert str(blocker / "registry") in str(caught.value)
    assert blocker.read_text() == "not a directory\n"
    with pytest.raises(RegistryError, match="not a directory"):
        registry.list("model")


def _promote_with_no_room(root: str, version: str, queue) -> None:
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # binds root too: no file may grow
    try:
        DirectoryRegistry(Path(root)).promote("model", version, by="ann")
    except RegistryError as exc:
        queue.put(("RegistryError", str(exc)))
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        queue.put((type(exc).__name__, str(exc)))
    else:
        queue.put(("ok", ""))


def test_a_failed_write_leaves_registry_json_unchanged(registry, artefacts):
    (d1, v1), (d2, v2) = artefacts(1), artefacts(2)
    registry.register("model", d1)
    registry.register("model", d2)
    registry.promote("model", v1, by="ann")
    state = (registry.root / "registry.json").read_bytes()
    token = registry.generation()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_promote_with_no_room, args=(str(registry.root), v2, queue))
    child.start()
    child.join(60)
    outcome, message = queue.get(timeout=5)
    assert outcome == "RegistryError", message
    assert "cannot write the registry" in message and "registry.json" in message
    assert (registry.root / "registry.json").read_bytes() == state
    assert registry.current("model").version == v1 and registry.generation() == token
    assert not [p.name for p in registry.root.iterdir() if ".tmp-" in p.name]  # no temp file left behind


@pytest.mark.parametrize("content, reason", [
    ("{not json", "not JSON"),
    ("[1, 2]", "expected an object"),
    ('{"format": 1, "generation": 0, "current": {}, "history": {}, "entries": [{"kind": "model"}]}', "must be a string"),
    ('{"format": 1, "generation": 2, "current": {"model": "ghost"}, "history": {}, "entries": []}', "not an entry"),
    ('{"format": 99, "generation": 0, "current": {}, "history": {}, "entries": []}', "layout format 99"),
])
def test_a_corrupt_registry_json_is_an_error_and_is_not_overwritten(tmp_path, artefacts, content, reason):
    root = tmp_path / "reg"
    root.mkdir()
    (root / "registry.json").write_text(content)
    registry = DirectoryRegistry(root)
    for call in (lambda: registry.list("model"), lambda: registry.current("model"), registry.generation,
                 lambda: registry.register("model", artefacts(1)[0]), lambda: registry.rollback("model", by="x")):
        with pytest.raises(RegistryError, match=reason) as caught:
            call()
        assert str(root / "registry.json") in str(caught.value)
    assert (root / "registry.json").read_text() == content
    assert not (root / "models").exists() or not any((root / "models").iterdir())


def test_an_unlisted_copy_left_by_a_crash_is_replaced(registry, artefacts):
    d1, v1 = artefacts(1)
    leftover = registry.root / "models" / v1
    leftover.mkdir(parents=True)
    (leftover / "half").write_text("copied before the crash")
    assert registry.list("model") == []
    entry = registry.register("model", d1)
    assert not (entry.path / "half").exists() and (entry.path / "sub" / "data.bin").read_bytes() == b"payload 1"


def _register_many(root: str, sources: list[str], start) -> None:
    start.wait(30)
    registry = DirectoryRegistry(Path(root))
    for source in sources:
        registry.register("model", Path(source))


def test_concurrent_processes_registering_are_all_listed(tmp_path):
    root = tmp_path / "reg"
    per_process = 4
    jobs = []
    versions = set()
    for p in range(4):
        sources = []
        for n in range(per_process):
            path = tmp_path / "src" / f"p{p}-{n}"
            versions.add(make_artefact(path, payload=f"process {p} artefact {n}".encode()))
            sources.append(str(path))
        jobs.append(sources)
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    processes = [ctx.Process(target=_register_many, args=(str(root), sources, start)) for sources in jobs]
    for process in processes:
        process.start()
    start.set()
    for process in processes:
        process.join(120)
    assert [process.exitcode for process in processes] == [0] * len(processes)
    listed = DirectoryRegistry(root).list("model")
    assert {entry.version for entry in listed} == versions
    assert len(listed) == len(versions)
    assert sorted(p.name for p in (root / "models").iterdir()) == sorted(versions)


def test_version_entry_round_trips_and_rejects_bad_shapes(tmp_path):
    entry = VersionEntry(kind="index", version="v1", status="candidate", path=tmp_path / "indexes" / "v1",
                         created="2026-01-01T00:00:00Z", registered="2026-01-02T00:00:00Z", metrics={"a": 1.0},
                         gate={"passed": True, "reasons": []})
    data = entry.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert VersionEntry.from_dict(data, tmp_path) == entry
    relative = {**data, "path": "indexes/v1", "future_key": 1}
    assert VersionEntry.from_dict(relative, tmp_path).path == tmp_path / "indexes" / "v1"
    with pytest.raises(ValueError, match="unknown status"):
        VersionEntry.from_dict({**data, "status": "golden"}, tmp_path)
    with pytest.raises(TypeError, match="metrics"):
        VersionEntry.from_dict({**data, "metrics": {"a": "high"}}, tmp_path)


def test_create_registry_by_name_by_dotted_path_and_unknown(tmp_path):
    registry = create_registry(RegistryConfig(), tmp_path / "r")
    assert isinstance(registry, DirectoryRegistry) and registry.root == tmp_path / "r"
    dotted = create_registry(RegistryConfig(backend="csbot.registry.directory:DirectoryRegistry"), tmp_path / "r")
    assert type(dotted) is DirectoryRegistry
    with pytest.raises(ConfigError, match=r"registry.backend: unknown 'nope'"):
        create_registry(RegistryConfig(backend="nope"), tmp_path / "r")
    with pytest.raises(ConfigError, match=r"registry.backend .*not a subclass"):
        create_registry(RegistryConfig(backend="csbot.errors:ConfigError"), tmp_path / "r")

    class Partial(Registry):
        def generation(self) -> str:
            return "0"

    with pytest.raises(TypeError):
        Partial(tmp_path)  # an incomplete backend fails at construction
