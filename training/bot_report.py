"""Write a whole-bot evaluation report: ``report.json``, ``report.md``, ``messages.jsonl`` and two plots.

``report.json`` is :class:`training.bot_evaluation.BotReport` as JSON; ``messages.jsonl`` holds one
:class:`~training.bot_evaluation.MessageOutcome` a line (what the curves are recomputed from);
``curve.png`` draws containment against precision as the thresholds move, the config's point marked;
``per_intent.png`` draws each intent's outcomes as stacked bars. Every file is written atomically.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from training.bot_evaluation import BotReport, CurvePoint, MessageOutcome
from training.report import _atomic_write, _cell, _fmt, _jsonable

logger = logging.getLogger(__name__)

MAX_BAR_INTENTS = 40

CURVE_NOTE = (
    "The curves are recomputed offline from each message's recorded confidence and retrieval score, not by "
    "sending the messages again. Intent curve: an answer from an intent (template or form) whose confidence "
    "is below the threshold counts as no answer (what the search would have found instead is not known), and a "
    "message sent to the search for low confidence whose confidence reaches the threshold counts as answered "
    "with its parsed intent; one threshold stands for every intent's own. Retrieval curve: a retrieved answer "
    "whose top score is below the threshold counts as no answer, and a search that found nothing close enough "
    "counts as answering its top record once that reaches the threshold (ties that would be clarified are not "
    "modelled). The marked point is what the bot did at its configured thresholds."
)


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _markdown(report: BotReport, title: str) -> str:
    r = report
    lines = [f"# {title}", "",
             f"{r.n} messages: {r.n_in_scope} in scope, {r.n_out_of_scope} out of scope.", "",
             "| metric | value |", "|---|---|",
             f"| **containment** (right answers / in-scope messages) | **{_pct(r.containment)}** ({r.right}/{r.n_in_scope}) |",
             f"| precision (right / answers given) | {_pct(r.precision)} ({r.right}/{r.right + r.wrong}) |",
             f"| out-of-scope abstention | {_pct(r.oos_abstain_rate)} |",
             f"| clarified | {_pct(r.clarify_share)} |",
             f"| fell back | {_pct(r.fallback_share)} |",
             f"| handed over | {_pct(r.handoff_share)} |",
             f"| latency p50 / p99 | {_ms(r.latency.p50_ms)} / {_ms(r.latency.p99_ms)} ms |", ""]
    lines += [f"A right answer is a template of the gold intent, a retrieved record labelled with it, or the first "
              f"question of its form (the bot started the right request: {r.ask_slot_right} of the right answers). "
              f"{r.unattributed} answers came from records with no intent and could not be attributed: they count "
              f"neither right nor wrong in precision (nor as right in containment). Every answer to an "
              f"out-of-scope message is wrong.", ""]
    lines += ["## How the messages ended", "", "| group | messages | answered | clarified | fell back | handed over |",
              "|---|---|---|---|---|---|"]
    for name, s in r.shares.items():
        lines.append(f"| {name.replace('_', ' ')} | {s.n} | {s.answered} | {s.clarified} ({_pct(s.clarify_share)}) "
                     f"| {s.fell_back} ({_pct(s.fallback_share)}) | {s.handed_over} ({_pct(s.handoff_share)}) |")
    lines += ["", "## Per intent", "",
              "| gold intent | messages | right | wrong | unattributed | clarified | fell back | handed over "
              "| containment | answered as it | precision |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in sorted(r.per_intent, key=lambda x: (x.containment if x.containment is not None else 2, x.intent)):
        lines.append(f"| {_cell(row.intent)} | {row.n} | {row.right} | {row.wrong} | {row.unattributed} "
                     f"| {row.clarified} | {row.fell_back} | {row.handed_over} | {_pct(row.containment)} "
                     f"| {row.answered_as} | {_pct(row.precision)} |")
    lines += ["", "## Most common wrong answers", ""]
    if r.wrong_answers:
        lines += ["| gold | answered | count | example |", "|---|---|---|---|"]
        for w in r.wrong_answers:
            example = w.example[:80].replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {_cell(w.gold)} | {_cell(w.answered)} | {w.count} | {example} |")
    else:
        lines.append("No wrong answers.")
    lines += ["", "## Latency", "",
              f"Turn total over {r.latency.n} messages: p50 {_ms(r.latency.p50_ms)} ms, p99 {_ms(r.latency.p99_ms)} ms, "
              f"mean {_ms(r.latency.mean_ms)} ms (messages sent concurrently, so the model calls were batched).",
              "", "## Containment against precision", "",
              f"Configured thresholds: intent {_fmt(r.intent_threshold)}, retrieval {_fmt(r.retrieval_threshold)}. "
              "See `curve.png`.", "", CURVE_NOTE, "",
              "| intent threshold | containment | precision | answered | OOS abstention |", "|---|---|---|---|---|"]
    for p in r.intent_curve:
        lines.append(f"| {p.threshold:.2f} | {_pct(p.containment)} | {_pct(p.precision)} | {p.answered} "
                     f"| {_pct(p.oos_abstain_rate)} |")
    lines += ["", "Files: `report.json` (these numbers), `messages.jsonl` (each message's outcome), `curve.png`, "
              "`per_intent.png`.", ""]
    return "\n".join(lines)


def _draw_curve(report: BotReport, path: Path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)

    def series(points: Sequence[CurvePoint], label: str, style: str) -> None:
        shown = [p for p in points if p.containment is not None and p.precision is not None]
        if shown:
            ax.plot([p.containment for p in shown], [p.precision for p in shown], style, label=label, markersize=4)

    series(report.intent_curve, "intent threshold moved", "o-")
    series(report.retrieval_curve, "retrieval threshold moved", "s--")
    if report.containment is not None and report.precision is not None:
        ax.plot([report.containment], [report.precision], "r*", markersize=16,
                label=f"configured (intent {_fmt(report.intent_threshold)})")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("containment (right answers / in-scope messages)")
    ax.set_ylabel("precision (right / answers given)")
    ax.set_title(f"{title}\ncontainment against precision", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    _atomic_write(path, lambda fh: fig.savefig(fh, format="png"))


def _draw_per_intent(report: BotReport, path: Path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = sorted((r for r in report.per_intent if r.n), key=lambda r: (-r.n, r.intent))[:MAX_BAR_INTENTS]
    fig = Figure(figsize=(8, max(3.0, 0.3 * len(rows) + 1.5)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    left = [0.0] * len(rows)
    parts = [("right", "tab:green"), ("wrong", "tab:red"), ("unattributed", "tab:grey"), ("clarified", "tab:blue"),
             ("fell_back", "tab:orange"), ("handed_over", "tab:purple")]
    for name, colour in parts:
        shares = [getattr(r, name) / r.n for r in rows]
        ax.barh(range(len(rows)), shares, left=left, color=colour, label=name.replace("_", " "))
        left = [a + b for a, b in zip(left, shares)]
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{r.intent} ({r.n})" for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the intent's messages")
    ax.set_title(f"{title}: outcome per gold intent", fontsize=10)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    _atomic_write(path, lambda fh: fig.savefig(fh, format="png"))


def write_bot_report(report: BotReport, outcomes: Sequence[MessageOutcome], out_dir: Path,
                     title: str = "Whole-bot evaluation") -> dict[str, Path]:
    """Write the report files into ``out_dir`` (created when needed); their paths under ``json``, ``markdown``,
    ``messages``, ``curve`` and ``per_intent``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / file for name, file in (("json", "report.json"), ("markdown", "report.md"),
             ("messages", "messages.jsonl"), ("curve", "curve.png"), ("per_intent", "per_intent.png"))}
    text = json.dumps(_jsonable(dataclasses.asdict(report)), indent=2, ensure_ascii=False) + "\n"
    _atomic_write(paths["json"], lambda fh: fh.write(text.encode("utf-8")))
    lines = "".join(json.dumps(_jsonable(dataclasses.asdict(o)), ensure_ascii=False) + "\n" for o in outcomes)
    _atomic_write(paths["messages"], lambda fh: fh.write(lines.encode("utf-8")))
    summary = _markdown(report, title)
    _atomic_write(paths["markdown"], lambda fh: fh.write(summary.encode("utf-8")))
    _draw_curve(report, paths["curve"], title)
    _draw_per_intent(report, paths["per_intent"], title)
    logger.info("wrote the bot evaluation report to %s", out_dir)
    return paths


__all__ = ["CURVE_NOTE", "write_bot_report"]
