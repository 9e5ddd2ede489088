"""Saving and loading a trained NLU model as a self-describing directory.

Layout::

    MODEL_DIR/
      csbot-model.json      manifest: artefact format, version and creation time, csbot version, base model,
                            data fingerprint, checksums of the weights, configs and tokenizer files, and
                            ``parent`` (the version warm-started from) when there was one
                            (see csbot.artefacts; its schema is :class:`ModelManifest`)
      model.safetensors     weights of encoder and heads
      encoder/config.json   the encoder's transformers config (rebuilds the network offline)
      tokenizer/            the tokenizer files
      labels.json           intents, slot tags, label mode, out-of-scope label
      heads.json            head shape (pooling, dropout, multi-label)
      calibration.json      temperature and out-of-scope threshold
      training_config.json  the training options used
      metrics.json          dev metrics at the end of training
      neighbours.npy        pooled vectors of training examples for out-of-scope detection (nlu/neighbours.py),
                            when calibration.json has a neighbour_threshold

Saving refuses an existing directory that is neither empty nor an NLU model (:func:`csbot.artefact_dirs.check_out_dir`).
Loading verifies every checksum; models saved before the tokenizer files had checksums still load, and a
tokenizer whose vocabulary is larger than the encoder's is refused either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csbot.artefact_dirs import atomic_directory
from csbot.artefacts import ArtefactInfo, ArtefactManifest, check_files, read_json, sha256_file, stamp, write_json
from csbot.artefacts import read_manifest as read_artefact_manifest
from csbot.errors import ArtefactError
from nlu.calibration import Calibration
from nlu.labels import LabelMaps
from nlu.model import HeadConfig, JointIntentSlotModel
from nlu.neighbours import BANK_FILE, NeighbourBank

KIND = "nlu-model"
MANIFEST = "csbot-model.json"
WEIGHTS = "model.safetensors"
TOKENIZER_DIR = "tokenizer"
_CHECKED = (WEIGHTS, "labels.json", "heads.json", "calibration.json", "encoder/config.json")
_INCOMPLETE = "the model directory is incomplete; retrain or copy it again"
_RETRAIN = "retrain the model with this version"


class ModelManifest(ArtefactManifest):
    """The schema of ``csbot-model.json``."""

    base_model: str = ""
    data_fingerprint: str = ""
    #: the version of the model this one was warm-started from (training/warm_start.py); absent: trained afresh
    parent: str | None = None


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
    #: Training examples' pooled vectors for out-of-scope detection without out-of-scope data (None: not used).
    neighbours: NeighbourBank | None = None
    #: Version of the model whose weights this one started from (a warm start); None: from the base encoder.
    parent: str | None = None


def save_bundle(bundle: ModelBundle, out_dir: str | Path) -> Path:
    """Write the artefact atomically: built in a sibling temp dir, then swapped into place."""
    from safetensors.torch import save_file

    out = Path(out_dir).resolve()
    with atomic_directory(out, kind=KIND) as tmp:
        state = {k: v.detach().float().contiguous().cpu() for k, v in bundle.model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS), metadata={"format": "pt"})
        (tmp / "encoder").mkdir()
        bundle.model.encoder.config.to_json_file(str(tmp / "encoder" / "config.json"))
        bundle.tokenizer.save_pretrained(str(tmp / TOKENIZER_DIR))
        tokenizer_files = sorted(p.relative_to(tmp).as_posix() for p in (tmp / TOKENIZER_DIR).rglob("*") if p.is_file())
        write_json(tmp / "labels.json", bundle.labels.to_dict())
        write_json(tmp / "heads.json", bundle.model.heads.to_dict())
        write_json(tmp / "calibration.json", bundle.calibration.to_dict())
        write_json(tmp / "training_config.json", bundle.training_config)
        write_json(tmp / "metrics.json", bundle.metrics)
        extra = [bundle.neighbours.save(tmp).name] if bundle.neighbours is not None else []
        manifest = stamp({
            "kind": KIND,
            "base_model": bundle.base_model,
            "data_fingerprint": bundle.fingerprint,
            "checksums": {name: sha256_file(tmp / name) for name in (*_CHECKED, *extra, *tokenizer_files)},
            **({"parent": bundle.parent} if bundle.parent else {}),
        })
        write_json(tmp / MANIFEST, manifest)
    bundle.manifest = manifest
    bundle.info = ArtefactInfo.from_manifest(manifest, out / MANIFEST)
    return out


def _read_json(path: Path) -> Any:
    return read_json(path, _INCOMPLETE)


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
    return read_artefact_manifest(root / MANIFEST, KIND, "NLU model", _RETRAIN, ModelManifest)


def _check_tokenizer_files(root: Path, checksums: dict[str, str]) -> None:
    """When the manifest covers the tokenizer, no file in ``tokenizer/`` may be missing from it (added later)."""
    covered = {name for name in checksums if name.startswith(f"{TOKENIZER_DIR}/")}
    if not covered:
        return  # saved before the tokenizer files had checksums
    for path in sorted((root / TOKENIZER_DIR).rglob("*")):
        if path.is_file() and path.relative_to(root).as_posix() not in covered:
            raise ArtefactError("a file the manifest does not list: the tokenizer was changed after saving; "
                                "copy the model directory again or retrain", path)


def load_bundle(model_dir: str | Path, verify: bool = True) -> ModelBundle:
    """Load a saved model on the CPU; every failure names the file at fault."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoTokenizer

    root = Path(model_dir)
    manifest, info = read_info(root)
    checksums = manifest.get("checksums") or {}
    check_files(root, root / MANIFEST, checksums, required=_CHECKED, verify=verify, hint=_INCOMPLETE)
    if verify:
        _check_tokenizer_files(root, checksums)
    try:
        labels = LabelMaps.from_dict(_read_json(root / "labels.json"))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ArtefactError(f"invalid label maps: {exc}", root / "labels.json") from exc
    try:
        heads = HeadConfig(**_read_json(root / "heads.json"))
    except TypeError as exc:
        raise ArtefactError(f"invalid head config: {exc}", root / "heads.json") from exc
    try:
        calibration = Calibration.from_dict(_read_json(root / "calibration.json"))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ArtefactError(f"invalid calibration: {exc}", root / "calibration.json") from exc
    try:
        encoder_config = AutoConfig.from_pretrained(str(root / "encoder"))
    except (OSError, ValueError) as exc:
        raise ArtefactError(f"invalid encoder config: {exc}", root / "encoder" / "config.json") from exc
    tokenizer_dir = root / TOKENIZER_DIR
    if not tokenizer_dir.is_dir():
        raise ArtefactError("missing tokenizer directory", tokenizer_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    except (OSError, ValueError, TypeError) as exc:
        raise ArtefactError(f"cannot load tokenizer: {exc}", tokenizer_dir) from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ArtefactError("a fast (Rust) tokenizer is needed for character offsets", tokenizer_dir)
    vocab_size = getattr(encoder_config, "vocab_size", None)
    if isinstance(vocab_size, int) and len(tokenizer) > vocab_size:
        raise ArtefactError(
            f"the tokenizer has {len(tokenizer)} tokens but the encoder only {vocab_size}: it belongs to another "
            "model; copy the model directory again or retrain", tokenizer_dir,
        )

    from nlu.model import model_from_config

    try:
        model = model_from_config(encoder_config, heads)
    except (ValueError, TypeError) as exc:  # e.g. an unknown pooling or a size that is not a number in heads.json
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
    neighbours = None
    if calibration.neighbour_threshold is not None:
        try:
            neighbours = NeighbourBank.load(root, calibration.neighbour_k)
        except (OSError, ValueError) as exc:
            raise ArtefactError(f"cannot read the out-of-scope neighbour bank ({exc}); {_INCOMPLETE}",
                                root / BANK_FILE) from exc
        if neighbours.dim != int(getattr(encoder_config, "hidden_size", neighbours.dim)):
            raise ArtefactError(f"the neighbour bank's vectors have {neighbours.dim} dimensions, the encoder's "
                                f"{encoder_config.hidden_size}", root / BANK_FILE)
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
        neighbours=neighbours,
        parent=manifest.get("parent"),
    )
