"""Confidence calibration and the out-of-scope threshold, both fitted on the dev set.

Temperature scaling divides the intent logits by one scalar T fitted to minimise the dev set's
negative log-likelihood; it keeps the ranking (accuracy is unchanged) and makes confidences honest.

Out-of-scope is decided on an *out-of-scope score* of the in-scope intents, higher meaning more
in scope: ``probability`` (the best calibrated in-scope probability) or ``energy`` (the log-sum-exp of
the raw in-scope logits, which keeps how strongly the network responded that softmax normalises
away). With out-of-scope dev data the trainer measures both and keeps the better (see
``training.trainer``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class Calibration:
    """What inference needs to turn logits into confidences and decide out-of-scope."""

    temperature: float = 1.0
    oos_threshold: float = 0.0
    threshold_source: str = "config"
    ece_before: float | None = None
    ece_after: float | None = None
    oos_score: str = "probability"
    oos_dev: dict | None = None  # per candidate score: threshold, recall and in-scope accuracy on dev
    #: out-of-scope detection without out-of-scope data (:mod:`nlu.neighbours`): a message whose similarity to
    #: its nearest training examples is below this is out of scope; None: not used by this model
    neighbour_threshold: float | None = None
    neighbour_k: int = 1
    #: the share of in-scope dev messages the threshold was chosen to keep, and how many dev messages there were
    neighbour_accept_rate: float | None = None
    neighbour_dev_size: int = 0
    #: the confidence the model's answers need (the dialogue policy's default ``thresholds.intent``): the lowest at
    #: which its answers on dev were right at least ``intent_precision`` of the time; None: not chosen
    intent_threshold: float | None = None
    intent_precision: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits / temperature))


OOS_SCORES = ("probability", "energy")


def oos_scores(logits: np.ndarray, score: str, temperature: float = 1.0, oos_index: int | None = None) -> np.ndarray:
    """The out-of-scope score per row of single-label intent ``logits`` (n x intents); higher is more in scope.

    The out-of-scope class itself (``oos_index``) is left out of both scores.
    """
    logits = np.atleast_2d(np.asarray(logits, dtype=np.float64))
    if score not in OOS_SCORES:
        raise ValueError(f"unknown out-of-scope score {score!r}: use one of {', '.join(OOS_SCORES)}")
    keep = np.ones(logits.shape[1], dtype=bool)
    if oos_index is not None:
        keep[oos_index] = False
    if not keep.any():
        return np.zeros(logits.shape[0])
    if score == "probability":
        return softmax(logits, temperature)[:, keep].max(axis=1)
    inside = logits[:, keep]
    peak = inside.max(axis=1, keepdims=True)
    return (peak + np.log(np.exp(inside - peak).sum(axis=1, keepdims=True)))[:, 0]


#: The lowest temperature calibration may choose. Below 1 the network's own probabilities would be sharpened,
#: which the dev NLL always asks for when dev has (almost) no errors: the temperature then collapses toward
#: zero and every probability becomes 1.0, so no confidence threshold can act. A floor of 1 keeps the raw scale.
TEMPERATURE_FLOOR = 1.0


def fit_temperature(logits: np.ndarray, targets: np.ndarray, multi_label: bool = False) -> float:
    """The T >= :data:`TEMPERATURE_FLOOR` that minimises dev NLL (softmax CE, or BCE per label in multi-label mode)."""
    import torch

    x = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(targets)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def nll() -> torch.Tensor:
        optimiser.zero_grad()
        scaled = x / log_t.exp()
        if multi_label:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(scaled, y.to(torch.float64))
        else:
            loss = torch.nn.functional.cross_entropy(scaled, y.long())
        loss.backward()
        return loss

    optimiser.step(nll)
    temperature = float(log_t.exp().item())
    if not np.isfinite(temperature) or temperature <= 0:
        return 1.0
    return float(np.clip(temperature, TEMPERATURE_FLOOR, 20.0))


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """Weighted mean gap between confidence and accuracy over equal-width confidence bins."""
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=float)
    if confidence.size == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            ece += mask.mean() * abs(confidence[mask].mean() - correct[mask].mean())
    return float(ece)


def choose_oos_threshold(
    in_scope_confidence: np.ndarray,
    in_scope_correct: np.ndarray,
    oos_confidence: np.ndarray,
    max_in_scope_cost: float = 0.01,
) -> tuple[float, dict]:
    """The threshold that flags the most out-of-scope dev examples while costing at most
    ``max_in_scope_cost`` of in-scope accuracy (an in-scope example below it counts wrong).

    Confidences are out-of-scope scores (see ``oos_scores``; any scale); an example already predicted
    out of scope should be given ``-inf`` so every threshold flags it. Ties in recall keep the lower
    threshold, the one that costs least.
    """
    in_conf = np.asarray(in_scope_confidence, dtype=float)
    in_ok = np.asarray(in_scope_correct, dtype=bool)
    oos_conf = np.asarray(oos_confidence, dtype=float)
    base = float(in_ok.mean()) if in_ok.size else 0.0
    floor = base - max_in_scope_cost - 1e-12
    candidates = np.unique(np.concatenate([in_conf, oos_conf]))
    candidates = candidates[np.isfinite(candidates)]
    best = (float(min(0.0, candidates[0])) if candidates.size else 0.0, -1.0, base)
    for threshold in candidates:
        # Flag strictly below the threshold; an OOS example at exactly t is flagged by t + eps.
        accuracy = float((in_ok & (in_conf >= threshold)).mean()) if in_ok.size else 0.0
        if accuracy < floor:
            break
        recall = float((oos_conf < threshold).mean()) if oos_conf.size else 0.0
        if recall > best[1]:
            best = (float(threshold), recall, accuracy)
    threshold, recall, accuracy = best
    return threshold, {
        "in_scope_accuracy_before": base,
        "in_scope_accuracy": accuracy,
        "oos_recall": max(recall, 0.0),
        "max_in_scope_cost": max_in_scope_cost,
    }
