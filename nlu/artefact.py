"""Saving and loading a trained NLU model as a self-describing directory.

Layout::

    MODEL_DIR/
      csbot-model.json      manifest: artefact format, version and creation time, csbot version, base model,
                            data fingerprint, checksums (see csbot.artefacts)
      model.safetensors     weights of encoder and heads
      encoder/config.json   the encoder's transformers config (rebuilds the network offline)
      tokenizer/            the tokenizer files
      labels.json           intents, slot tags, label mode, out-of-scope label
      heads.json            head shape (pooling, dropout, multi-label)
      calibration.json      temperature and out-of-scope threshold
      training_config.json  the training options used
      metrics.json          dev metrics at the end of training
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csbot.artefacts import ArtefactInfo, atomic_directory, read_json, sha256_file, stamp, write_json
from csbot.artefacts import read_manifest as read_artefact_manifest
from csbot.errors import ArtefactError
from nlu.calibration import Calibration
from nlu.labels import LabelMaps
from nlu.model import HeadConfig, JointIntentSlotModel

MANIFEST = "csbot-model.json"
WEIGHTS = "model.safetensors"
_CHECKED = (WEIGHTS, "labels.json", "heads.json", "calibration.json", "encoder/config.json")


@dataclass
class ModelBundle:
    """Everything a trained model is made of, in memory."""

    model: JointIntentSlotModel
    tokenizer: Any
    labels: LabelMaps
    calibration: Calibration
    base_model: str = ""
    fingerprint: str = ""
    training_config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    #: Version, creation time and manifest file, once saved or loaded (None for a model only in memory).
    info: ArtefactInfo | None = None


def save_bundle(bundle: ModelBundle, out_dir: str | Path) -> Path:
    """Write the artefact atomically: built in a sibling temp dir, then swapped into place."""
    from safetensors.torch import save_file

    out = Path(out_dir).resolve()
    with atomic_directory(out) as tmp:
        state = {k: v.detach().float().contiguous().cpu() for k, v in bundle.model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS), metadata={"format": "pt"})
        (tmp / "encoder").mkdir()
        bundle.model.encoder.config.to_json_file(str(tmp / "encoder" / "config.json"))
        bundle.tokenizer.save_pretrained(str(tmp / "tokenizer"))
        write_json(tmp / "labels.json", bundle.labels.to_dict())
        write_json(tmp / "heads.json", bundle.model.heads.to_dict())
        write_json(tmp / "calibration.json", bundle.calibration.to_dict())
        write_json(tmp / "training_config.json", bundle.training_config)
        write_json(tmp / "metrics.json", bundle.metrics)
        manifest = stamp({
            "kind": "nlu-model",
            "base_model": bundle.base_model,
            "data_fingerprint": bundle.fingerprint,
            "checksums": {name: sha256_file(tmp / name) for name in _CHECKED},
        })
        write_json(tmp / MANIFEST, manifest)
    bundle.manifest = manifest
    bundle.info = ArtefactInfo.from_manifest(manifest, out / MANIFEST)
    return out


def _read_json(path: Path) -> Any:
    return read_json(path, "the model directory is incomplete; retrain or copy it again")


def read_manifest(model_dir: str | Path) -> dict[str, Any]:
    """The manifest, after checking the artefact format is one this version reads."""
    return read_info(model_dir)[0]


def read_info(model_dir: str | Path) -> tuple[dict[str, Any], ArtefactInfo]:
    """The manifest and the model's :class:`~csbot.artefacts.ArtefactInfo` (version, creation time ...).

    A model saved in another artefact format raises IncompatibleArtefactError naming the manifest and both
    format numbers.
    """
    root = Path(model_dir)
    if not root.is_dir():
        raise ArtefactError("no such model directory", root)
    return read_artefact_manifest(root / MANIFEST, "nlu-model", "NLU model", "retrain the model with this version")


def load_bundle(model_dir: str | Path, verify: bool = True) -> ModelBundle:
    """Load a saved model on the CPU; every failure names the file at fault."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoTokenizer

    root = Path(model_dir)
    manifest, info = read_info(root)
    checksums = manifest.get("checksums", {})
    for name in _CHECKED:
        path = root / name
        if not path.is_file():
            raise ArtefactError("missing file (the model directory is incomplete; retrain or copy it again)", path)
        if verify and name in checksums and sha256_file(path) != checksums[name]:
            raise ArtefactError("corrupt file: its checksum does not match the manifest", path)
    try:
        labels = LabelMaps.from_dict(_read_json(root / "labels.json"))
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtefactError(f"invalid label maps: {exc}", root / "labels.json") from exc
    try:
        heads = HeadConfig(**_read_json(root / "heads.json"))
    except TypeError as exc:
        raise ArtefactError(f"invalid head config: {exc}", root / "heads.json") from exc
    calibration = Calibration.from_dict(_read_json(root / "calibration.json"))
    try:
        encoder_config = AutoConfig.from_pretrained(str(root / "encoder"))
    except (OSError, ValueError) as exc:
        raise ArtefactError(f"invalid encoder config: {exc}", root / "encoder" / "config.json") from exc
    tokenizer_dir = root / "tokenizer"
    if not tokenizer_dir.is_dir():
        raise ArtefactError("missing tokenizer directory", tokenizer_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    except (OSError, ValueError, TypeError) as exc:
        raise ArtefactError(f"cannot load tokenizer: {exc}", tokenizer_dir) from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ArtefactError("a fast (Rust) tokenizer is needed for character offsets", tokenizer_dir)

    from nlu.model import model_from_config

    try:
        model = model_from_config(encoder_config, heads)
    except ValueError as exc:  # e.g. an unknown pooling in heads.json
        raise ArtefactError(f"invalid head config: {exc}", root / "heads.json") from exc
    try:
        state = load_file(str(root / WEIGHTS))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtefactError(f"corrupt weights: {exc}", root / WEIGHTS) from exc
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ArtefactError(f"weights do not fit the saved config: {exc}", root / WEIGHTS) from exc
    if heads.num_intents != labels.num_intents or heads.num_tags != labels.num_tags:
        raise ArtefactError("label maps do not match the heads' sizes", root / "labels.json")
    model.eval()
    training_config = _read_json(root / "training_config.json") if (root / "training_config.json").is_file() else {}
    metrics = _read_json(root / "metrics.json") if (root / "metrics.json").is_file() else {}
    return ModelBundle(
        model=model,
        tokenizer=tokenizer,
        labels=labels,
        calibration=calibration,
        base_model=str(manifest.get("base_model", "")),
        fingerprint=str(manifest.get("data_fingerprint", "")),
        training_config=training_config,
        metrics=metrics,
        manifest=manifest,
        info=info,
    )
