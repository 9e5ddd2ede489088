"""Write an NLU evaluation report: the metrics as JSON, a Markdown summary and two plots.

:func:`write_report` takes the dict of :func:`training.evaluation.evaluate_predictions` and writes
``report.json``, ``report.md``, ``confusion.png`` and ``reliability.png`` into one folder, each
atomically (a temporary file in the same folder, then ``os.replace``), so a reader never sees half a
file. matplotlib is imported lazily and drives its Agg canvas directly, leaving pyplot's global
state alone.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger(__name__)

MAX_CONFUSION_LABELS = 15
WORST_INTENTS = 15
TOP_PAIRS = 20

_HEADLINE = [
    ("n", "examples"),
    ("intent_accuracy", "intent accuracy"),
    ("intent_macro_f1", "intent macro F1"),
    ("slot_f1", "slot F1"),
    ("slot_precision", "slot precision"),
    ("slot_recall", "slot recall"),
    ("exact_match", "exact match"),
]
_OOS = [
    ("n_oos", "out-of-scope examples"),
    ("in_scope_accuracy", "in-scope accuracy"),
    ("oos_recall", "OOS recall"),
    ("oos_precision", "OOS precision"),
    ("oos_f1", "OOS F1"),
    ("oos_balanced", "OOS balanced (mean of in-scope accuracy and OOS recall)"),
]


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then move it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars to Python, tuples to lists, NaN/inf to ``None``."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _cell(label: str) -> str:
    """A label as a Markdown table cell."""
    return "*(none)*" if label == "" else f"`{label}`".replace("|", "\\|")


def _markdown(metrics: dict, title: str) -> str:
    """The human-readable summary."""
    primary = metrics.get("primary_metric")
    lines = [f"# {title}", ""]
    if primary:
        lines += [f"Primary metric: **{primary}** = {_fmt(metrics.get(primary))}", ""]
    lines += ["| metric | value |", "|---|---|"]
    for key, name in _HEADLINE:
        if key in metrics:
            value = _fmt(metrics[key])
            lines.append(f"| {name} | {'**' + value + '**' if key == primary else value} |")
    if metrics.get("slot_f1", 0) is None:
        lines += ["", "No entities in gold or predictions: slot scores are not applicable."]

    if "n_oos" in metrics:
        lines += ["", "## Out of scope", "", "| metric | value |", "|---|---|"]
        for key, name in _OOS:
            if key in metrics:
                value = _fmt(metrics[key])
                lines.append(f"| {name} | {'**' + value + '**' if key == primary else value} |")

    per_intent = metrics.get("per_intent") or {}
    if per_intent:
        worst = sorted(per_intent.items(), key=lambda kv: (kv[1].get("f1", 0.0), -kv[1].get("support", 0), kv[0]))
        worst = worst[:WORST_INTENTS]
        lines += [
            "",
            f"## Worst {len(worst)} intents by F1",
            "",
            "| intent | precision | recall | F1 | support |",
            "|---|---|---|---|---|",
        ]
        for label, row in worst:
            lines.append(
                f"| {_cell(label)} | {_fmt(row.get('precision'))} | {_fmt(row.get('recall'))} "
                f"| {_fmt(row.get('f1'))} | {_fmt(row.get('support'))} |"
            )

    pairs = metrics.get("confused_pairs") or []
    lines += ["", "## Most confused pairs", ""]
    if pairs:
        lines += ["| gold | predicted | count |", "|---|---|---|"]
        for gold, pred, count in pairs[:TOP_PAIRS]:
            lines.append(f"| {_cell(gold)} | {_cell(pred)} | {count} |")
    else:
        lines.append("No intent confusions.")

    calibration = metrics.get("calibration") or {}
    lines += ["", "## Calibration", ""]
    if "ece" in calibration:
        n_bins = calibration.get("n_bins", len(calibration.get("bins") or []))
        lines.append(f"Expected calibration error (ECE, {n_bins} bins): {_fmt(calibration['ece'])}")
    else:
        lines.append("No calibration data.")
    lines += ["", "Plots: `confusion.png` (confusion matrix), `reliability.png` (reliability diagram).", ""]
    return "\n".join(lines)


def _confusion_cells(metrics: dict) -> list[tuple[str, str, int]]:
    """(gold, predicted, count) cells: the full sparse matrix when present, else the top confused pairs."""
    rows = metrics.get("confusion") or metrics.get("confused_pairs") or []
    return [(str(g), str(p), int(c)) for g, p, c in rows]


def _draw_confusion(metrics: dict, path: Path, title: str) -> None:
    """A confusion matrix over the intents most involved in confusions, or a note when there are none."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cells = _confusion_cells(metrics)
    involvement: Counter[str] = Counter()
    for gold, pred, count in cells:
        if gold != pred:
            involvement[gold] += count
            involvement[pred] += count
    labels = [lab for lab, _ in sorted(involvement.items(), key=lambda kv: (-kv[1], kv[0]))][:MAX_CONFUSION_LABELS]

    size = max(5.0, 0.55 * len(labels) + 3.0)
    fig = Figure(figsize=(size, size), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if not labels:
        ax.axis("off")
        ax.text(0.5, 0.5, "No intent confusions", ha="center", va="center", fontsize=14)
        ax.set_title(f"{title}\nconfusion matrix", fontsize=10)
    else:
        index = {lab: i for i, lab in enumerate(labels)}
        matrix = [[0] * len(labels) for _ in labels]
        for gold, pred, count in cells:
            if gold in index and pred in index:
                matrix[index[gold]][index[pred]] += count
        image = ax.imshow(matrix, cmap="Blues", interpolation="nearest")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        names = [lab if lab else "(none)" for lab in labels]
        ax.set_xticks(range(len(labels)))
        ax.set_yticks(range(len(labels)))
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
        ax.set_yticklabels(names, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        peak = max(max(row) for row in matrix) or 1
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                if count:
                    colour = "white" if count > peak / 2 else "black"
                    ax.text(j, i, str(count), ha="center", va="center", fontsize=7, color=colour)
        ax.set_title(f"{title}\nconfusion matrix, the {len(labels)} most confused intents", fontsize=10)
    fig.tight_layout()
    _atomic_write(path, lambda fh: fig.savefig(fh, format="png"))


def _draw_reliability(metrics: dict, path: Path, title: str) -> None:
    """A reliability diagram: accuracy per confidence bin as bars, mean confidence, and the diagonal."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    calibration = metrics.get("calibration") or {}
    bins = [b for b in calibration.get("bins") or [] if b.get("count")]
    fig = Figure(figsize=(6, 6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    if bins:
        centres = [(b["lo"] + b["hi"]) / 2 for b in bins]
        widths = [b["hi"] - b["lo"] for b in bins]
        ax.bar(
            centres,
            [b["accuracy"] for b in bins],
            width=widths,
            edgecolor="black",
            alpha=0.7,
            label="accuracy",
        )
        ax.plot(
            [b["mean_confidence"] for b in bins],
            [b["accuracy"] for b in bins],
            marker="o",
            color="tab:red",
            label="accuracy at mean confidence",
        )
    else:
        ax.text(0.5, 0.5, "No calibration data", ha="center", va="center", fontsize=14)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ece = calibration.get("ece")
    ax.set_title(f"{title}: reliability" + (f" (ECE {ece:.4f})" if isinstance(ece, (int, float)) else ""))
    ax.legend(loc="upper left")
    fig.tight_layout()
    _atomic_write(path, lambda fh: fig.savefig(fh, format="png"))


def write_report(metrics: dict, out_dir: Path, title: str = "NLU evaluation") -> dict[str, Path]:
    """Write ``report.json``, ``report.md``, ``confusion.png`` and ``reliability.png`` into ``out_dir``.

    Creates ``out_dir`` when needed; every file is written atomically. Returns the paths under the
    keys ``json``, ``markdown``, ``confusion`` and ``reliability``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "report.json",
        "markdown": out_dir / "report.md",
        "confusion": out_dir / "confusion.png",
        "reliability": out_dir / "reliability.png",
    }
    clean = _jsonable(metrics)
    text = json.dumps(clean, indent=2, sort_keys=True) + "\n"
    _atomic_write(paths["json"], lambda fh: fh.write(text.encode("utf-8")))
    summary = _markdown(clean, title)
    _atomic_write(paths["markdown"], lambda fh: fh.write(summary.encode("utf-8")))
    _draw_confusion(clean, paths["confusion"], title)
    _draw_reliability(clean, paths["reliability"], title)
    logger.info("wrote the evaluation report to %s", out_dir)
    return paths


__all__ = ["write_report"]
