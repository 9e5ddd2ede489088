"""``csbot evaluate``: ``nlu`` scores a model on labelled data, ``bot`` runs labelled messages through the whole bot.

``csbot evaluate --model M --data D --report R`` (no subcommand) is ``csbot evaluate nlu``, as before the
group existed.
"""

from __future__ import annotations

from pathlib import Path

import click

from bot.cli.options import (
    backend_option,
    config_option,
    device_option,
    format_option,
    label_column_option,
    text_column_option,
)


class _NluByDefault(click.Group):
    """A group whose arguments, when they do not start with a subcommand's name, go to ``nlu``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["nlu", *args]
        return super().parse_args(ctx, args)


@click.group("evaluate", cls=_NluByDefault)
def evaluate_group() -> None:
    """Evaluate the NLU model (nlu, the default) or the whole bot (bot) on labelled data.

    `csbot evaluate --model M --data D --report R` is `csbot evaluate nlu ...`.
    """


@evaluate_group.command("nlu", short_help="Score an NLU model on labelled data (the default).")
@click.option("--model", "model_dir", type=click.Path(file_okay=False), required=True, help="Trained model directory.")
@click.option("--data", "data", multiple=True, required=True, help="Labelled data: PATH or PATH@SELECTOR (repeatable).")
@format_option
@text_column_option
@label_column_option
@backend_option
@device_option
@config_option
@click.option("--report", "report_dir", type=click.Path(file_okay=False), required=True, help="Directory for report.json, report.md and plots.")
def nlu_command(model_dir, data, data_format, text_column, label_column, backend, device, config_path, report_dir) -> None:
    """Evaluate a model on labelled data and write a report."""
    from rich.console import Console

    from csbot.settings import load_config
    from nlu.inference import NLUModel
    from training.data import load_dataset
    from training.evaluation import evaluate_predictions
    from training.report import write_report

    config = load_config(config_path, {"nlu.backend": backend, "nlu.device": device}).nlu
    examples = load_dataset(list(data), data_format, text_column, label_column)
    model = NLUModel.load(
        model_dir, device=config.device, backend=config.backend, batch_size=config.batch_size,
        max_length=config.max_length, oos_threshold=config.oos_threshold,
    )
    predictions = model.parse([ex.text for ex in examples])
    oos = model.labels.oos_label or next((ex.intent for ex in examples if ex.intent.lower() == "oos"), None)
    metrics = evaluate_predictions(examples, predictions, oos_label=oos)
    metrics["model"] = str(model_dir)
    metrics["data"] = [str(d) for d in data]
    metrics["backend"] = model.backend
    paths = write_report(metrics, Path(report_dir), title=f"NLU evaluation of {Path(model_dir).name}")
    console = Console()
    for key in ("n", "intent_accuracy", "intent_macro_f1", "slot_f1", "exact_match", "in_scope_accuracy", "oos_recall", "oos_precision"):
        if key in metrics and metrics[key] is not None:
            value = metrics[key]
            console.print(f"{key:>18}  {value:.4f}" if isinstance(value, float) else f"{key:>18}  {value}")
    console.print(f"report: {paths['markdown']}")


@evaluate_group.command("bot", short_help="Whole-bot containment and precision on labelled messages.")
@config_option
@click.option("--data", "data", multiple=True, required=True,
              help="Labelled in-scope messages: PATH or PATH@SELECTOR in any data format (repeatable); "
                   "examples labelled oos / out_of_scope count as out of scope.")
@click.option("--out-of-scope", "out_of_scope", multiple=True,
              help="Out-of-scope messages: any data format (intents ignored) or .txt, one a line (repeatable).")
@format_option
@click.option("--model", "model_dir", default=None, help="NLU model directory (default from config).")
@click.option("--index", "index_dir", default=None, help="Q&A index directory (default from config).")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), required=True,
              help="Directory for report.json, report.md, messages.jsonl, curve.png and per_intent.png.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="At most N messages from --data and N from --out-of-scope (a fixed-seed sample).")
@click.option("--concurrency", type=click.IntRange(min=1), default=32, show_default=True,
              help="Messages in flight at once (their model calls are batched).")
def bot_command(config_path, data, out_of_scope, data_format, model_dir, index_dir, report_dir, limit,
                concurrency) -> None:
    """Send every labelled message through the whole bot, each in a fresh session, and report containment
    (right answers / in-scope messages), the precision of the answers given, out-of-scope abstention, the
    shares clarified, fallen back and handed over, per intent, and the containment-precision curve."""
    import asyncio

    from rich.console import Console

    from bot.app import BotApp
    from bot.messages import Message
    from bot.policy.base import DEFAULT_INTENT_THRESHOLD
    from csbot.settings import load_config
    from training.bot_evaluation import load_messages, run_bot, summarise
    from training.bot_report import write_bot_report

    console = Console(highlight=False)
    messages = load_messages(list(data), list(out_of_scope), limit, data_format)
    # sessions in memory (nothing touches Redis), one process: the evaluation leaves no trace behind it
    config = load_config(config_path, {"sessions.store": "memory", "server.workers": 1, "bot.model_dir": model_dir,
                                       "bot.index_dir": index_dir})
    app = BotApp.build(config, transcripts=False)
    thresholds = app.domain.thresholds
    retrieval_threshold: float | None = None
    if app.retriever is not None:  # the domain's, else the one the index chose when it was built
        index = getattr(app.retriever, "index", None)
        retrieval_threshold = (thresholds.retrieval if thresholds.retrieval is not None
                               else index.threshold if index is not None else config.retrieval.threshold)

    async def run_all():
        async with app:
            return await run_bot(lambda session_id, text: app.manager.handle(Message(session_id, text, "evaluation")),
                                 messages, concurrency)

    outcomes = asyncio.run(run_all())
    # the domain's, else the one the model chose on dev when it was trained (see Policy.intent_threshold)
    model = getattr(app.nlu, "model", None)
    intent_threshold = thresholds.intent if thresholds.intent is not None else getattr(model, "intent_threshold", None)
    report = summarise(outcomes, intent_threshold if intent_threshold is not None else DEFAULT_INTENT_THRESHOLD,
                       retrieval_threshold)
    report.config = str(config_path or "(default)")
    report.data = [str(d) for d in data]
    report.out_of_scope_data = [str(d) for d in out_of_scope]
    paths = write_bot_report(report, outcomes, Path(report_dir),
                             title=f"Whole-bot evaluation of {Path(config_path).name if config_path else 'the default bot'}")

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f}%"

    console.print(f"{report.n} messages ({report.n_in_scope} in scope, {report.n_out_of_scope} out of scope)")
    console.print(f"containment     {pct(report.containment)}  ({report.right} right of {report.n_in_scope} in scope)")
    console.print(f"precision       {pct(report.precision)}  ({report.wrong} wrong, "
                  f"{report.unattributed} could not be attributed)")
    console.print(f"OOS abstention  {pct(report.oos_abstain_rate)}")
    console.print(f"clarified {pct(report.clarify_share)}, fell back {pct(report.fallback_share)}, "
                  f"handed over {pct(report.handoff_share)}")
    console.print(f"report: {paths['markdown']}")
