"""Write the report of a model comparison and its gate decision.

:func:`write_comparison_report` writes into one folder ``report.json`` (the gate decision, the whole
:class:`~training.compare.Comparison` and any training details), ``report.md`` (a headline saying whether the
candidate is promoted and why, then one section of tables per set) and two plots per set:
``f1_delta-<set>.png`` (per-intent F1 change) and ``reliability-<set>.png`` (reliability diagram, current and
candidate). Every file is written atomically, matplotlib draws on its Agg canvas (as in
:mod:`training.report`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from training.compare import CONFUSION_GROWTH, Comparison, SetComparison
from training.gate import GateDecision
from training.report import _atomic_write, _cell, _fmt, _jsonable

logger = logging.getLogger(__name__)

MAX_BAR_INTENTS = 40
MAX_TABLE_INTENTS = 50
MAX_CONFUSIONS = 20

_ROWS = [
    ("intent_accuracy", "intent accuracy"),
    ("intent_macro_f1", "intent macro F1"),
    ("slot_f1", "slot F1"),
    ("exact_match", "exact match"),
    ("joint_score", "joint score (intent and slot F1)"),
    ("in_scope_accuracy", "in-scope accuracy"),
    ("oos_recall", "out-of-scope recall"),
    ("oos_precision", "out-of-scope precision"),
    ("oos_balanced", "out-of-scope balanced"),
    ("ece", "calibration error (ECE, lower is better)"),
]
_THRESHOLDS = [
    ("oos_score", "out-of-scope score"),
    ("oos_threshold", "out-of-scope threshold"),
    ("neighbour_threshold", "neighbour threshold"),
    ("intent_threshold", "answer threshold"),
]
UNKNOWN_NOTE = ("Intents the current model does not know (added by the new data) count as wrong for it: it can "
                "never predict them.")


def plot_name(kind: str, set_name: str) -> str:
    """The file name of a set's plot (``f1_delta-dev.png``); odd characters in the set's name become ``_``."""
    return f"{kind}-{re.sub(r'[^A-Za-z0-9_.-]', '_', set_name)}.png"


def _delta(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.4f}"


def headline(gate: GateDecision) -> str:
    """The report's first line: promoted or not, and why."""
    if gate.passed:
        why = " ".join(gate.reasons) if not gate.sets else (
            f"on every set the candidate's primary metric is at least the current model's minus the tolerance "
            f"({gate.tolerance:.4f}).")
        return f"**Promoted: yes.** {why[0].upper()}{why[1:]}"
    failed = [reason for reason, verdict in zip(gate.reasons, gate.sets) if not verdict.passed] or gate.reasons
    return "**Promoted: no.** " + " ".join(failed)


def _set_section(result: SetComparison, has_old: bool) -> list[str]:
    lines = [f"## Set `{result.name}` ({result.n} examples)", "",
             f"Primary metric: **{result.primary_metric}**.", ""]
    if has_old:
        lines += ["| metric | current | candidate | change |", "|---|---|---|---|"]
    else:
        lines += ["| metric | candidate |", "|---|---|"]
    for key, name in _ROWS:
        old, new = result.value("old", key), result.value("new", key)
        if old is None and new is None:
            continue
        label = f"**{name}**" if key == result.primary_metric else name
        if has_old:
            lines.append(f"| {label} | {_fmt(old)} | {_fmt(new)} | {_delta(result.deltas.get(key))} |")
        else:
            lines.append(f"| {label} | {_fmt(new)} |")
    if result.unknown_to_old:
        listed = ", ".join(f"`{k}` ({v})" for k, v in result.unknown_to_old.items())
        lines += ["", f"Intents the current model does not know, with their examples: {listed}. {UNKNOWN_NOTE}"]
    if result.unknown_to_new:
        listed = ", ".join(f"`{k}` ({v})" for k, v in result.unknown_to_new.items())
        lines += ["", f"Intents the candidate does not know, with their examples: {listed}."]
    if not has_old:
        return [*lines, ""]

    rows = sorted(result.per_intent, key=lambda r: (r.delta if r.delta is not None else 0.0, r.intent))
    lines += ["", "### Per-intent F1", ""]
    if rows:
        shown = rows[:MAX_TABLE_INTENTS]
        if len(rows) > len(shown):
            lines += [f"The {len(shown)} intents whose F1 changed most for the worse, of {len(rows)}.", ""]
        lines += ["| intent | support | current F1 | candidate F1 | change | known by |", "|---|---|---|---|---|---|"]
        for r in shown:
            lines.append(f"| {_cell(r.intent)} | {r.support} | {_fmt(r.old_f1)} | {_fmt(r.new_f1)} "
                         f"| {_delta(r.delta)} | {r.known_by} |")
    else:
        lines.append("No intents.")
    lines += ["", "### Newly confused pairs", "",
              f"Confusions the candidate makes that the current model does not, or makes at least "
              f"{CONFUSION_GROWTH} times more often.", ""]
    if result.newly_confused:
        lines += ["| gold | predicted | current | candidate |", "|---|---|---|---|"]
        for ch in result.newly_confused[:MAX_CONFUSIONS]:
            lines.append(f"| {_cell(ch.gold)} | {_cell(ch.predicted)} | {ch.old_count} | {ch.new_count} |")
    else:
        lines.append("None.")
    return [*lines, ""]


def _markdown(comparison: Comparison, gate: GateDecision, title: str, training: Mapping[str, Any] | None) -> str:
    has_old = comparison.has_old
    lines = [f"# {title}", "", headline(gate), ""]
    lines += [f"- {reason}" for reason in gate.reasons]
    lines += ["", f"Current model: `{comparison.old_version or 'none'}`; candidate: `{comparison.new_version}`; "
              f"tolerance {gate.tolerance:.4f}.", ""]
    if has_old:
        unknown = any(result.unknown_to_old for result in comparison.sets.values())
        lines += [f"Each model flags out of scope at its own thresholds.{' ' + UNKNOWN_NOTE if unknown else ''}", ""]
    for result in comparison.sets.values():
        lines += _set_section(result, has_old)
    lines += ["## Thresholds", ""]
    if has_old:
        lines += ["| threshold | current | candidate |", "|---|---|---|"]
    else:
        lines += ["| threshold | candidate |", "|---|---|"]
    for key, name in _THRESHOLDS:
        new = comparison.new_thresholds.get(key)
        if has_old:
            lines.append(f"| {name} | {_fmt((comparison.old_thresholds or {}).get(key))} | {_fmt(new)} |")
        else:
            lines.append(f"| {name} | {_fmt(new)} |")
    if training:
        lines += ["", "## Training", "", "| | |", "|---|---|"]
        lines += [f"| {key.replace('_', ' ')} | {_fmt(value)} |" for key, value in training.items()]
    plots = ", ".join(f"`{plot_name('f1_delta', s)}`, `{plot_name('reliability', s)}`" for s in comparison.sets)
    lines += ["", f"Plots: {plots}.", ""]
    return "\n".join(lines)


def _draw_f1_delta(result: SetComparison, has_old: bool, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = sorted((r for r in result.per_intent if r.delta is not None), key=lambda r: (-abs(r.delta), r.intent))
    rows = sorted(rows[:MAX_BAR_INTENTS], key=lambda r: (r.delta, r.intent))
    fig = Figure(figsize=(8, max(3.0, 0.28 * len(rows) + 1.5)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if not has_old or not rows:
        ax.axis("off")
        ax.text(0.5, 0.5, "No current model to compare with" if not has_old else "No intents", ha="center",
                va="center", fontsize=14)
    else:
        colours = ["tab:green" if r.delta > 0 else "tab:red" if r.delta < 0 else "tab:grey" for r in rows]
        bars = ax.barh(range(len(rows)), [r.delta for r in rows], color=colours)
        for bar, r in zip(bars, rows):
            if r.known_by != "both":
                bar.set_hatch("//")
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([f"{r.intent or '(none)'}{'' if r.known_by == 'both' else ' *'}" for r in rows],
                           fontsize=7)
        ax.set_xlabel("F1 change (candidate - current); * known to one model only")
    ax.set_title(f"{result.name}: per-intent F1 change", fontsize=10)
    fig.tight_layout()
    _atomic_write(path, lambda fh: fig.savefig(fh, format="png"))


def _draw_reliability(result: SetComparison, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    for side, name, style in (("old", "current", "s-"), ("new", "candidate", "o-")):
        metrics = result.old if side == "old" else result.new
        if metrics is None:
            continue
        bins = [b for b in (metrics.get("calibration") or {}).get("bins") or [] if b.get("count")]
        ece = result.value(side, "ece")
        label = f"{name} (ECE {_fmt(ece)})"
        ax.plot([b["mean_confidence"] for b in bins], [b["accuracy"] for b in bins], style, label=label, markersize=5)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{result.name}: reliability, current and candidate", fontsize=10)
    ax.legend(loc="lower right")
    fig.tight_layout()
    _atomic_write(path, lambda fh: fig.savefig(fh, format="png"))


def write_comparison_report(comparison: Comparison, gate: GateDecision, out_dir: str | Path,
                            title: str = "Candidate against the current model",
                            training: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and each set's two plots into ``out_dir`` (created when needed).

    ``training`` (optional) is a flat mapping of details about how the candidate was trained, shown in a
    table. Returns the paths under ``json``, ``markdown``, ``f1_delta:<set>`` and ``reliability:<set>``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "markdown": out_dir / "report.md"}
    data = {"passed": gate.passed, "headline": headline(gate), "gate": gate.to_dict(),
            "comparison": comparison.to_dict(), "training": dict(training or {})}
    text = json.dumps(_jsonable(data), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    _atomic_write(paths["json"], lambda fh: fh.write(text.encode("utf-8")))
    summary = _markdown(comparison, gate, title, training)
    _atomic_write(paths["markdown"], lambda fh: fh.write(summary.encode("utf-8")))
    for name, result in comparison.sets.items():
        paths[f"f1_delta:{name}"] = out_dir / plot_name("f1_delta", name)
        paths[f"reliability:{name}"] = out_dir / plot_name("reliability", name)
        _draw_f1_delta(result, comparison.has_old, paths[f"f1_delta:{name}"])
        _draw_reliability(result, paths[f"reliability:{name}"])
    logger.info("wrote the comparison report to %s", out_dir)
    return paths


__all__ = ["UNKNOWN_NOTE", "headline", "plot_name", "write_comparison_report"]
