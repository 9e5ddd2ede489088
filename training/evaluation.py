"""NLU evaluation: compare gold examples with parse results and return one metrics dict.

:func:`evaluate_predictions` is what ``csbot evaluate``, the training loop and the benchmarks call.
Its result is JSON-serialisable, every rate is a fraction in [0, 1] (or ``None`` where it is
undefined), and ``primary_metric`` names the key to select models on.

Intents are compared as label *sets*, so one code path serves single-label data (sets of one),
multi-label data (``#``-joined labels) and examples with no intent at all (the empty set). Slots are
scored entity-level with seqeval over word-level BIO tags (see :func:`word_bio_tags`), so a span that
differs from gold only inside one whitespace word (``Paris`` vs ``Paris,``) still counts as right.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from nlu.schema import MULTI_LABEL_SEPARATOR, Example, ParseResult

logger = logging.getLogger(__name__)

ECE_BINS = 15
TOP_CONFUSED_PAIRS = 20

_WORD = re.compile(r"\S+")


def word_bio_tags(text: str, spans: Iterable[tuple[int, int, str]]) -> list[str]:
    """BIO tags, one per whitespace-separated word of ``text``, for character ``spans``.

    A word takes the entity whose span overlaps it (the largest overlap, then the earliest span,
    when several do); the first word a span tags gets ``B-``, its later words ``I-``; other words
    get ``O``.
    """
    ordered = sorted(((int(s), int(e), str(lab)) for s, e, lab in spans), key=lambda t: (t[0], t[1]))
    tags: list[str] = []
    started: set[int] = set()
    for match in _WORD.finditer(text):
        w_start, w_end = match.span()
        best: int | None = None
        best_overlap = 0
        for idx, (s, e, _) in enumerate(ordered):
            overlap = min(e, w_end) - max(s, w_start)
            if overlap > best_overlap:
                best, best_overlap = idx, overlap
        if best is None:
            tags.append("O")
            continue
        label = ordered[best][2]
        tags.append(("I-" if best in started else "B-") + label)
        started.add(best)
    return tags


def _safe_div(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def _f1(precision: float, recall: float) -> float:
    return _safe_div(2 * precision * recall, precision + recall)


def _split_labels(name: str) -> frozenset[str]:
    return frozenset(part for part in name.split(MULTI_LABEL_SEPARATOR) if part)


def _predicted_set(pred: ParseResult) -> frozenset[str]:
    """The predicted intent labels: ``pred.intents`` when given, else ``pred.intent.name`` (split on ``#``)."""
    if pred.intents:
        return frozenset(s.name for s in pred.intents if s.name)
    return _split_labels(pred.intent.name)


def _set_name(labels: frozenset[str]) -> str:
    """A label set as one readable name (``#``-joined, sorted; ``""`` for no intent)."""
    return MULTI_LABEL_SEPARATOR.join(sorted(labels))


def _check_alignment(gold: Sequence[Example], predicted: Sequence[ParseResult]) -> None:
    if len(gold) != len(predicted):
        raise ValueError(
            f"cannot evaluate: {len(gold)} gold examples but {len(predicted)} predictions; "
            "they must be aligned one to one"
        )
    if not gold:
        raise ValueError("cannot evaluate: no examples were given")
    for idx, (g, p) in enumerate(zip(gold, predicted)):
        if g.text != p.text:
            raise ValueError(
                f"cannot evaluate: gold and prediction {idx} are for different texts: "
                f"{g.text[:80]!r} vs {p.text[:80]!r}"
            )


def _slot_scores(gold_tags: list[list[str]], pred_tags: list[list[str]]) -> dict[str, float | None]:
    """Entity-level micro precision/recall/F1 with seqeval; ``None`` when there are no entities at all."""
    has_any = any(t != "O" for seq in gold_tags for t in seq) or any(t != "O" for seq in pred_tags for t in seq)
    if not has_any:
        return {"slot_f1": None, "slot_precision": None, "slot_recall": None}
    from seqeval.metrics import f1_score, precision_score, recall_score

    return {
        "slot_f1": float(f1_score(gold_tags, pred_tags, zero_division=0)),
        "slot_precision": float(precision_score(gold_tags, pred_tags, zero_division=0)),
        "slot_recall": float(recall_score(gold_tags, pred_tags, zero_division=0)),
    }


def _per_label(gold_sets: list[frozenset[str]], pred_sets: list[frozenset[str]]) -> dict[str, dict[str, float | int]]:
    """Per atomic label binary precision/recall/F1 and gold support (equals per-class scores for single-label data)."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for g, p in zip(gold_sets, pred_sets):
        for label in g & p:
            tp[label] += 1
        for label in p - g:
            fp[label] += 1
        for label in g - p:
            fn[label] += 1
    labels = sorted(set().union(*gold_sets, *pred_sets))
    out: dict[str, dict[str, float | int]] = {}
    for label in labels:
        precision = _safe_div(tp[label], tp[label] + fp[label])
        recall = _safe_div(tp[label], tp[label] + fn[label])
        out[label] = {
            "precision": precision,
            "recall": recall,
            "f1": _f1(precision, recall),
            "support": tp[label] + fn[label],
        }
    return out


def _calibration(confidences: list[float], correct: list[bool], n_bins: int = ECE_BINS) -> dict:
    """Expected calibration error over ``n_bins`` equal-width confidence bins, and the bins themselves."""
    counts = [0] * n_bins
    conf_sums = [0.0] * n_bins
    hits = [0] * n_bins
    for conf, ok in zip(confidences, correct):
        c = float(conf)
        if not math.isfinite(c):
            c = 0.0
        c = min(max(c, 0.0), 1.0)
        idx = min(int(c * n_bins), n_bins - 1)
        counts[idx] += 1
        conf_sums[idx] += c
        hits[idx] += int(ok)
    total = sum(counts)
    ece = 0.0
    bins = []
    for i in range(n_bins):
        mean_conf = conf_sums[i] / counts[i] if counts[i] else None
        acc = hits[i] / counts[i] if counts[i] else None
        if counts[i]:
            ece += counts[i] / total * abs(acc - mean_conf)
        bins.append(
            {"lo": i / n_bins, "hi": (i + 1) / n_bins, "count": counts[i], "mean_confidence": mean_conf, "accuracy": acc}
        )
    return {"ece": ece, "n_bins": n_bins, "bins": bins}


def evaluate_predictions(
    gold: list[Example], predicted: list[ParseResult], oos_label: str | None = None
) -> dict:
    """Score ``predicted`` parse results against aligned ``gold`` examples.

    Returns a JSON-serialisable dict with ``n``, ``intent_accuracy``, ``intent_macro_f1``, ``slot_f1``,
    ``slot_precision``, ``slot_recall``, ``exact_match``, ``per_intent``, ``confused_pairs``,
    ``confusion``, ``calibration``, ``multi_label`` and ``primary_metric``; with ``oos_label`` present
    among the gold labels also ``in_scope_accuracy``, ``oos_recall``, ``oos_precision``, ``oos_f1``,
    ``n_oos`` and ``oos_balanced``. Raises :class:`ValueError` when the two lists are not aligned.
    """
    _check_alignment(gold, predicted)
    n = len(gold)

    gold_sets = [frozenset(g.intents) for g in gold]
    pred_sets = [_predicted_set(p) for p in predicted]
    multi_label = any(len(s) != 1 for s in gold_sets) or any(len(s) > 1 for s in pred_sets)

    use_oos = oos_label is not None and any(g.intent == oos_label for g in gold)
    if oos_label is not None and not use_oos:
        logger.info("out-of-scope label %s does not occur in the gold data; no OOS metrics", oos_label)
    gold_oos = [use_oos and g.intent == oos_label for g in gold]
    pred_oos = [use_oos and (p.out_of_scope or p.intent.name == oos_label) for p in predicted]
    if use_oos:
        oos_set = frozenset({oos_label})  # type: ignore[arg-type]
        gold_sets = [oos_set if go else s for s, go in zip(gold_sets, gold_oos)]
        pred_sets = [oos_set if po else s for s, po in zip(pred_sets, pred_oos)]

    # With OOS data a prediction flagged out of scope is right exactly when gold is out of scope.
    intent_correct = [
        (go == po) if (go or po) else (g == p)
        for g, p, go, po in zip(gold_sets, pred_sets, gold_oos, pred_oos)
    ]

    per_intent = _per_label(gold_sets, pred_sets)
    tp_all = sum(len(g & p) for g, p in zip(gold_sets, pred_sets))
    micro_p = _safe_div(tp_all, sum(len(p) for p in pred_sets))
    micro_r = _safe_div(tp_all, sum(len(g) for g in gold_sets))
    macro_f1 = sum(v["f1"] for v in per_intent.values()) / len(per_intent) if per_intent else 0.0

    pair_counts: Counter[tuple[str, str]] = Counter(
        (_set_name(g), _set_name(p)) for g, p in zip(gold_sets, pred_sets)
    )
    confused = sorted(
        ((g, p, c) for (g, p), c in pair_counts.items() if g != p), key=lambda t: (-t[2], t[0], t[1])
    )[:TOP_CONFUSED_PAIRS]
    confusion = sorted(([g, p, c] for (g, p), c in pair_counts.items()), key=lambda t: (t[0], t[1]))

    gold_tags = [word_bio_tags(g.text, [(e.start, e.end, e.entity) for e in g.entities]) for g in gold]
    pred_tags = [word_bio_tags(p.text, [(e.start, e.end, e.entity) for e in p.entities]) for p in predicted]
    exact = [ok and gt == pt for ok, gt, pt in zip(intent_correct, gold_tags, pred_tags)]

    metrics: dict = {
        "n": n,
        "multi_label": multi_label,
        "intent_accuracy": sum(intent_correct) / n,
        "intent_macro_f1": macro_f1,
        "intent_micro_f1": _f1(micro_p, micro_r),
        **_slot_scores(gold_tags, pred_tags),
        "exact_match": sum(exact) / n,
        "per_intent": per_intent,
        "confused_pairs": [[g, p, c] for g, p, c in confused],
        "confusion": confusion,
        "calibration": _calibration([p.intent.confidence for p in predicted], intent_correct),
    }

    if use_oos:
        n_oos = sum(gold_oos)
        n_in = n - n_oos
        tp = sum(go and po for go, po in zip(gold_oos, pred_oos))
        in_scope_acc = (
            sum(ok for ok, go in zip(intent_correct, gold_oos) if not go) / n_in if n_in else None
        )
        recall = _safe_div(tp, n_oos)
        precision = _safe_div(tp, sum(pred_oos))
        metrics.update(
            {
                "n_oos": n_oos,
                "in_scope_accuracy": in_scope_acc,
                "oos_recall": recall,
                "oos_precision": precision,
                "oos_f1": _f1(precision, recall),
                "oos_balanced": recall if in_scope_acc is None else (in_scope_acc + recall) / 2,
                "primary_metric": "oos_balanced",
            }
        )
    else:
        # Model selection wants a smooth signal: exact match (and, in multi-label data, exact label
        # sets) stays near zero for many epochs on hard data, so the intent and slot scores are averaged.
        intent_score = metrics["intent_micro_f1"] if multi_label else metrics["intent_accuracy"]
        if any(g.entities for g in gold):
            metrics["joint_score"] = (intent_score + (metrics["slot_f1"] or 0.0)) / 2
            metrics["primary_metric"] = "joint_score"
        else:
            metrics["primary_metric"] = "intent_micro_f1" if multi_label else "intent_accuracy"

    logger.debug(
        "evaluated %d examples: intent_accuracy=%.4f primary %s=%s",
        n,
        metrics["intent_accuracy"],
        metrics["primary_metric"],
        metrics[metrics["primary_metric"]],
    )
    return metrics


__all__ = ["ECE_BINS", "evaluate_predictions", "word_bio_tags"]
