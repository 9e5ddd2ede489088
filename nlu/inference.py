"""Batched, thread-safe parsing of texts into parse results (DESIGN.md).

Texts are tokenised once, grouped by length so each padded batch wastes little work, run through a
backend (a :class:`~nlu.runners.Runner` named by ``nlu.backend``: torch fp32 on CPU, torch fp16 on CUDA,
or ONNX Runtime fp32 / int8 as the optimised CPU path), and turned back into intents with calibrated
confidences and entities with exact character spans.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from csbot.artefacts import ArtefactInfo
from csbot.devices import resolve_device  # noqa: F401 (re-exported)
from csbot.errors import ModelError
from csbot.plugins import NLU_BACKENDS
from nlu.alignment import decode_entities
from nlu.artefact import ModelBundle, load_bundle
from nlu.calibration import OOS_SCORES, oos_scores, sigmoid, softmax
from nlu.runners.base import Runner
from nlu.schema import MULTI_LABEL_SEPARATOR, IntentScore, ParseResult

log = logging.getLogger(__name__)

RANKING_SIZE = 5

#: Lone UTF-16 surrogates (undecodable bytes read with ``surrogateescape``, a JSON ``"\udc80"`` escape):
#: the tokenizer refuses a whole batch for one of them.
_SURROGATES = re.compile("[\ud800-\udfff]")


def tokenizable(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD: one character for one, so entity offsets into
    the text stay valid, and the tokenizer takes it."""
    return text if text.isascii() else _SURROGATES.sub("\ufffd", text)


@dataclass
class _Encoded:
    ids: list[int]
    offsets: list[tuple[int, int]]
    word_ids: list[int | None]


class NLUModel:
    """A trained joint model ready to parse; safe to call from several threads."""

    def __init__(
        self,
        bundle: ModelBundle,
        device: str = "auto",
        backend: str = "torch",
        batch_size: int = 32,
        max_length: int = 128,
        oos_threshold: float | None = None,
        model_dir: str | Path | None = None,
        precision: str = "auto",
        oos_neighbours: bool = True,
    ) -> None:
        runner_class = NLU_BACKENDS.resolve(backend)  # an unknown name: ConfigError naming nlu.backend
        self.bundle = bundle
        self.labels = bundle.labels
        self.tokenizer = bundle.tokenizer
        self.batch_size = batch_size
        self.max_length = max_length
        self.backend = backend
        calibration = bundle.calibration
        # A threshold given here is a probability, and applies only where dev chose none.
        if oos_threshold is not None and calibration.threshold_source != "dev":
            self.oos_threshold = float(oos_threshold)
            self.oos_score = "probability"
        else:
            self.oos_threshold = float(calibration.oos_threshold)
            self.oos_score = calibration.oos_score
        if self.oos_score not in OOS_SCORES:
            raise ModelError(
                f"calibration.json: unknown oos_score {self.oos_score!r} (this version knows {', '.join(OOS_SCORES)})"
            )
        self.temperature = float(calibration.temperature)
        #: out-of-scope detection without out-of-scope data (nlu/neighbours.py), when the model has it
        use = oos_neighbours and calibration.neighbour_threshold is not None
        self.neighbours = bundle.neighbours if use else None
        self.neighbour_threshold = float(calibration.neighbour_threshold or 0.0)
        #: the confidence this model's answers need, chosen on dev (None: not chosen; the domain decides)
        self.intent_threshold = calibration.intent_threshold
        self._lock = threading.Lock()
        self._runner: Runner = runner_class.from_bundle(bundle, model_dir=model_dir, device=device, precision=precision)
        self.device = self._runner.device
        self._oos_index = self.labels.intent_id(self.labels.oos_label) if self.labels.oos_label else None

    @classmethod
    def load(cls, model_dir: str | Path, **options: Any) -> NLUModel:
        """Load a saved artefact (see ``nlu.artefact``) and prepare it for inference."""
        return cls(load_bundle(model_dir), model_dir=model_dir, **options)

    # -- identity ------------------------------------------------------------------------------
    @property
    def info(self) -> ArtefactInfo | None:
        """Kind, version, creation time, format and manifest file of the saved model (None if never saved)."""
        return self.bundle.info

    @property
    def version(self) -> str:
        """The model's version id (``20261129T175012Z-3fa9c1d2``); empty for a model never saved."""
        return self.bundle.info.version if self.bundle.info is not None else ""

    @property
    def created(self) -> datetime | None:
        """When the model was saved (aware UTC datetime); None for a model never saved."""
        return self.bundle.info.created if self.bundle.info is not None else None

    # -- encoding ------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> list[_Encoded]:
        """Tokenise without padding, keeping character offsets and word ids (lone surrogates replaced, see
        :func:`tokenizable`)."""
        batch = self.tokenizer(
            [tokenizable(t) for t in texts],
            truncation=True,
            max_length=self.max_length,
            return_offsets_mapping=True,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return [
            _Encoded(batch["input_ids"][i], [tuple(o) for o in batch["offset_mapping"][i]], batch.word_ids(i))
            for i in range(len(texts))
        ]

    def _pad(self, encoded: Sequence[_Encoded]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        width = max(len(e.ids) for e in encoded)
        pad_id = self.tokenizer.pad_token_id or 0
        ids = np.full((len(encoded), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(encoded), width), dtype=np.int64)
        for row, e in enumerate(encoded):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        return ids, mask, np.zeros_like(ids)

    def logits(self, texts: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray], list[_Encoded]]:
        """Raw intent logits (n x intents), slot logits per text (pieces x tags), and the encodings."""
        intent_out, slot_out, _, encoded = self.forward(texts)
        return intent_out, slot_out, encoded

    def forward(self, texts: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, list[_Encoded]]:
        """:meth:`logits` and the pooled sentence vectors (n x hidden) the out-of-scope detector compares."""
        if isinstance(texts, str):
            raise TypeError("logits() takes a list of texts, not one string")
        with self._lock:
            encoded = self.encode(texts)
            order = sorted(range(len(texts)), key=lambda i: len(encoded[i].ids))
            intent_out = np.zeros((len(texts), self.labels.num_intents), dtype=np.float32)
            slot_out: list[np.ndarray] = [np.empty(0)] * len(texts)
            pooled_out: np.ndarray | None = None
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                ids, mask, types = self._pad([encoded[i] for i in chunk])
                intent_logits, slot_logits, pooled = self._runner(ids, mask, types)
                if pooled_out is None:
                    pooled_out = np.zeros((len(texts), pooled.shape[1]), dtype=np.float32)
                for row, i in enumerate(chunk):
                    intent_out[i] = intent_logits[row]
                    slot_out[i] = slot_logits[row, : len(encoded[i].ids)]
                    pooled_out[i] = pooled[row]
        if pooled_out is None:
            pooled_out = np.zeros((0, 0), dtype=np.float32)
        return intent_out, slot_out, pooled_out, encoded

    # -- decoding ------------------------------------------------------------------------------
    def parse(self, texts: Sequence[str]) -> list[ParseResult]:
        """Parse a batch of texts; an empty list gives an empty list. A lone surrogate in a text is replaced
        by U+FFFD (in the result's text too), so no text can fail the batch it is in."""
        if isinstance(texts, str):
            texts = [texts]
        if not texts:
            return []
        texts = [tokenizable(t) for t in texts]
        intent_logits, slot_logits, pooled, encoded = self.forward(texts)
        similarity = self.neighbours.scores(pooled) if self.neighbours is not None else None
        results = []
        for i, text in enumerate(texts):
            result = self._result(text, intent_logits[i], slot_logits[i], encoded[i])
            result.threshold = self.intent_threshold
            if similarity is not None:
                result.oos_score = round(float(similarity[i]), 4)
                if result.oos_score < self.neighbour_threshold:
                    result.out_of_scope = True
            results.append(result)
        return results

    def _result(self, text: str, intent_logits: np.ndarray, slot_logits: np.ndarray, enc: _Encoded) -> ParseResult:
        labels = self.labels
        tag_probs = softmax(slot_logits) if slot_logits.size else slot_logits
        entities = (
            decode_entities(text, enc.offsets, enc.word_ids, tag_probs, labels) if labels.slot_types else []
        )
        if labels.multi_label:
            probs = sigmoid(intent_logits, self.temperature)
            ranked = np.argsort(-probs)
            chosen = [int(i) for i in ranked if probs[i] >= 0.5]
            if not chosen and not labels.allows_empty:
                chosen = [int(ranked[0])]
            intents = [IntentScore(labels.intents[i], float(probs[i])) for i in chosen]
            if intents:
                intent = IntentScore(
                    MULTI_LABEL_SEPARATOR.join(s.name for s in intents), min(s.confidence for s in intents)
                )
            else:
                intent = IntentScore("", float(1.0 - probs[ranked[0]]))
            ranking = [IntentScore(labels.intents[int(i)], float(probs[i])) for i in ranked[:RANKING_SIZE]]
            out_of_scope = float(probs[ranked[0]]) < self.oos_threshold
            return ParseResult(text, intent, ranking, entities, out_of_scope, intents)

        probs = softmax(intent_logits, self.temperature)
        ranked = [int(i) for i in np.argsort(-probs)]
        top = ranked[0]
        in_scope = [i for i in ranked if i != self._oos_index]
        ranking = [IntentScore(labels.intents[i], float(probs[i])) for i in in_scope[:RANKING_SIZE]]
        if self.oos_score == "energy":
            score = float(oos_scores(intent_logits, "energy", oos_index=self._oos_index)[0])
        else:
            score = float(probs[in_scope[0]]) if in_scope else 0.0
        out_of_scope = top == self._oos_index or score < self.oos_threshold
        intent = IntentScore(labels.intents[top], float(probs[top]))
        return ParseResult(text, intent, ranking, entities, out_of_scope, [intent])
