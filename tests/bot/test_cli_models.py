"""``csbot models list|show|register|promote|rollback|reject``: output, JSON, exit codes (8 registry, 9 refused)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest

from bot.cli import main
from csbot.artefacts import sha256_file, stamp, write_json
from csbot.registry import DirectoryRegistry


def make_artefact(path: Path, kind: str = "model", payload: bytes = b"weights") -> str:
    """A minimal artefact (a manifest and one checked file); returns its version."""
    manifest_name, manifest_kind = {"model": ("csbot-model.json", "nlu-model"),
                                    "index": ("csbot-index.json", "qa-index")}[kind]
    path.mkdir(parents=True)
    (path / "weights.bin").write_bytes(payload)
    manifest = {"kind": manifest_kind, "created": "2026-04-01T08:30:00Z",
                "checksums": {"weights.bin": sha256_file(path / "weights.bin")}}
    if kind == "index":
        manifest["dimension"] = 8
    write_json(path / manifest_name, stamp(manifest))
    return manifest["version"]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def reg(tmp_path) -> Path:
    return tmp_path / "registry"


@pytest.fixture
def two_models(tmp_path) -> list[tuple[Path, str]]:
    return [(tmp_path / f"m{n}", make_artefact(tmp_path / f"m{n}", payload=f"model {n}".encode())) for n in (1, 2)]


def test_register_promote_list_show_rollback(capsys, reg, two_models):
    (d1, v1), (d2, v2) = two_models
    code, out, err = run_cli(capsys, "models", "register", str(d1), "--registry", str(reg), "--note", "baseline")
    assert code == 0, err
    assert f"registered NLU model {v1} (candidate)" in out
    assert f"csbot models promote {v1} --kind model" in out
    code, out, err = run_cli(capsys, "models", "register", str(d2), "--registry", str(reg), "--parent", v1)
    assert code == 0, err

    code, out, err = run_cli(capsys, "models", "promote", v1, "--registry", str(reg), "--by", "ann")
    assert (code, out.strip()) == (0, f"promoted NLU model {v1} by ann"), err
    code, out, err = run_cli(capsys, "models", "promote", v2, "--registry", str(reg))
    assert code == 0, err
    assert f"promoted NLU model {v2} (was {v1}) by {getpass.getuser()}" in out

    code, out, err = run_cli(capsys, "models", "list", "--registry", str(reg))
    assert code == 0, err
    lines = out.splitlines()
    row2 = next(line for line in lines if v2 in line and "current" in line)
    row1 = next(line for line in lines if v1 in line and "retired" in line)
    assert row2.lstrip().startswith("│ *") or "*" in row2.split(v2)[0]
    assert "*" not in row1.split(v1)[0]
    assert lines.index(row2) < lines.index(row1)  # newest registration first
    assert v1 in row2.split(v2)[1]  # the parent column
    assert "ann" in row1

    code, out, err = run_cli(capsys, "models", "list", "--registry", str(reg), "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert [(e["version"], e["status"]) for e in listed] == [(v2, "promoted"), (v1, "retired")]

    code, out, err = run_cli(capsys, "models", "show", v1, "--registry", str(reg))
    assert code == 0, err
    assert f"NLU model {v1}" in out and "status: retired" in out and "note: baseline" in out
    assert "(current)" not in out
    code, out, err = run_cli(capsys, "models", "show", v2, "--registry", str(reg), "--json")
    assert json.loads(out)["parent"] == v1 and json.loads(out)["path"] == str(reg / "models" / v2)

    code, out, err = run_cli(capsys, "models", "rollback", "--registry", str(reg), "--by", "cy")
    assert code == 0, err
    assert f"rolled NLU model back to {v1} from {v2} by cy" in out
    assert DirectoryRegistry(reg).current("model").version == v1

    code, out, err = run_cli(capsys, "models", "rollback", "--registry", str(reg))
    assert code == 8
    assert err.startswith("error: ") and "no earlier NLU model to roll back to" in err


def test_index_kind_is_read_from_the_manifest(capsys, reg, tmp_path):
    version = make_artefact(tmp_path / "idx", kind="index")
    code, out, err = run_cli(capsys, "models", "register", str(tmp_path / "idx"), "--registry", str(reg))
    assert code == 0, err
    assert f"registered Q&A index {version}" in out
    assert DirectoryRegistry(reg).list("model") == []
    code, out, err = run_cli(capsys, "models", "list", "--registry", str(reg), "--kind", "index", "--json")
    assert [e["kind"] for e in json.loads(out)] == ["index"]
    code, out, err = run_cli(capsys, "models", "register", str(tmp_path / "idx"), "--registry", str(reg),
                             "--kind", "model")
    assert code == 8 and "a Q&A index" in err


def test_registry_path_comes_from_the_config(capsys, tmp_path, two_models):
    (d1, v1), _ = two_models
    config = tmp_path / "conf" / "bot.yaml"
    config.parent.mkdir()
    config.write_text("registry:\n  path: shared-registry\n")
    code, _out, err = run_cli(capsys, "models", "register", str(d1), "--config", str(config))
    assert code == 0, err
    assert DirectoryRegistry(tmp_path / "conf" / "shared-registry").get("model", v1).status == "candidate"


def test_no_registry_configured_is_a_config_error(capsys, tmp_path):
    config = tmp_path / "bot.yaml"
    config.write_text("bot: {}\n")
    code, _out, err = run_cli(capsys, "models", "list", "--config", str(config))
    assert code == 2
    assert "registry.path" in err and "--registry" in err


def test_a_corrupt_artefact_exits_8(capsys, reg, tmp_path):
    make_artefact(tmp_path / "bad")
    (tmp_path / "bad" / "weights.bin").write_bytes(b"changed")
    code, _out, err = run_cli(capsys, "models", "register", str(tmp_path / "bad"), "--registry", str(reg))
    assert code == 8
    assert "weights.bin" in err and "checksum" in err
    assert not (reg / "registry.json").exists()


def test_unknown_version_and_corrupt_registry_exit_8(capsys, reg, two_models):
    (d1, _), _ = two_models
    run_cli(capsys, "models", "register", str(d1), "--registry", str(reg))
    code, _, err = run_cli(capsys, "models", "promote", "nope", "--registry", str(reg))
    assert code == 8 and "'nope'" in err
    (reg / "registry.json").write_text("{torn")
    code, _out, err = run_cli(capsys, "models", "list", "--registry", str(reg))
    assert code == 8 and str(reg / "registry.json") in err and "corrupt" in err
    assert (reg / "registry.json").read_text() == "{torn"


def test_a_version_the_gate_refused_needs_force(capsys, reg, two_models):
    (d1, v1), (d2, v2) = two_models
    registry = DirectoryRegistry(reg)
    registry.register("model", d1)
    registry.promote("model", v1, by="ann")
    registry.register("model", d2, gate={"passed": False, "reasons": ["dev.intent_accuracy 0.88 < 0.91 - 0.005",
                                                                      "regression.intent_accuracy fell"]})
    token = registry.generation()
    code, out, err = run_cli(capsys, "models", "promote", v2, "--registry", str(reg))
    assert code == 9
    assert "dev.intent_accuracy 0.88 < 0.91 - 0.005" in err and "regression.intent_accuracy fell" in err
    assert "--force" in err
    assert registry.current("model").version == v1 and registry.generation() == token

    code, out, err = run_cli(capsys, "models", "promote", v2, "--registry", str(reg), "--force", "--by", "boss")
    assert code == 0, err
    assert "forced" in out
    current = registry.current("model")
    assert (current.version, current.promoted_by, current.note) == (v2, "boss", "forced")
    assert registry.generation() != token


def test_a_rejected_version_needs_force(capsys, reg, two_models):
    (d1, v1), _ = two_models
    run_cli(capsys, "models", "register", str(d1), "--registry", str(reg))
    code, out, err = run_cli(capsys, "models", "reject", v1, "--registry", str(reg), "--note", "rude replies")
    assert code == 0, err
    assert f"rejected NLU model {v1}" in out
    code, _, err = run_cli(capsys, "models", "promote", v1, "--registry", str(reg))
    assert code == 9 and "rude replies" in err
    assert DirectoryRegistry(reg).current("model") is None
    code, _out, err = run_cli(capsys, "models", "promote", v1, "--registry", str(reg), "--force")
    assert code == 0, err
    assert DirectoryRegistry(reg).current("model").version == v1


def test_an_unwritable_registry_exits_8(capsys, tmp_path, two_models):
    (d1, _), _ = two_models
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _out, err = run_cli(capsys, "models", "register", str(d1), "--registry", str(blocker / "reg"))
    assert code == 8 and str(blocker / "reg") in err


@pytest.mark.slow
def test_a_real_model_registers_and_promotes(capsys, reg, tiny_model_dir):
    from nlu.artefact import load_bundle, read_info

    version = read_info(tiny_model_dir)[1].version
    code, out, err = run_cli(capsys, "models", "register", str(tiny_model_dir), "--registry", str(reg))
    assert code == 0, err
    assert f"registered NLU model {version}" in out
    code, _out, err = run_cli(capsys, "models", "promote", version, "--registry", str(reg))
    assert code == 0, err
    entry = DirectoryRegistry(reg).resolve("model")
    assert entry.version == version and entry.data_fingerprint == read_info(tiny_model_dir)[0].get("data_fingerprint")
    assert load_bundle(entry.path, verify=True).info.version == version  # the copy loads and verifies
