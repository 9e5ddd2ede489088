"""``csbot index ...``: build, change, search, inspect and evaluate a Q&A retrieval index."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from bot.cli.options import INDEX_TYPE_CHOICES, QA_FORMAT_CHOICES, config_option

index_option = click.option("--index", "index_dir", type=click.Path(file_okay=False), required=True,
                            help="Index directory.")
qa_option = click.option("--qa", "qa_paths", multiple=True, required=True,
                         help="Q&A data: JSONL/CSV records, chat transcripts, or any NLU data format (repeatable).")
model_option = click.option("--model", default=None,
                            help="Embedding model the index was built with, if not the configured one.")
qa_format_option = click.option("--format", "data_format", type=QA_FORMAT_CHOICES, default=None,
                                help="Data format of --qa/--data; detected from path and content when omitted.")


@click.group("index")
def index_group() -> None:
    """Build and use the Q&A retrieval index (FAISS)."""


@contextlib.contextmanager
def _progress(show: bool) -> Iterator:
    """A rich progress bar fed with (stage, advance, total) calls; silent when not on a terminal."""
    if not show:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    tasks: dict[str, int] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  transient=True, stderr=True) as bar:
        def update(stage: str, advance: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], advance=advance)

        yield update


def _config(config_path, **overrides):
    from csbot.settings import load_config

    return load_config(config_path, {f"retrieval.{key}": value for key, value in overrides.items()}).retrieval


@index_group.command("build")
@qa_option
@qa_format_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Where to write the index: a new or empty directory, or an index to replace.")
@click.option("--index-type", type=INDEX_TYPE_CHOICES, default=None,
              help="auto (default): exact search for small corpora, HNSW for large ones.")
@click.option("--device", default=None, help="auto | cpu | cuda: where the embedding model and the index run.")
@click.option("--model", default=None, help="Embedding model: sentence-transformers name or path (default all-MiniLM-L6-v2).")
@click.option("--finetune", is_flag=True, help="Fine-tune the embedding model on the Q&A pairs first.")
@click.option("--accept-rate", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Share of held-out in-scope questions the index's answer threshold accepts (default 0.97).")
@config_option
def build_command(qa_paths, data_format, out_dir, index_type, device, model, finetune, accept_rate,
                  config_path) -> None:
    """Build an index from Q&A data, merging near-identical questions.

    --out must be new, empty, or an index (replaced whole once the new one is complete); anything else is
    refused before any work, and nothing is deleted. The index chooses its own answer threshold: the score
    that --accept-rate of its questions reach when searched with themselves left out (the configured
    retrieval.threshold when too few questions share an intent or answer).
    """
    from csbot.artefact_dirs import check_out_dir
    from retrieval.embeddings import Embedder
    from retrieval.persistence import KIND
    from retrieval.qa_index import QAIndex
    from training.qa_data import load_qa

    check_out_dir(out_dir, KIND)
    config = _config(config_path, index_type=index_type, device=device, model=model, accept_rate=accept_rate)
    records = load_qa(list(qa_paths), data_format)
    embedder = Embedder(config.model, config.device, config.batch_size)
    with _progress(sys.stderr.isatty()) as progress:
        if finetune:
            from retrieval.finetune import finetune_embedder

            result = finetune_embedder(embedder, records, config.finetune,
                                       (lambda step, total, loss: progress("fine-tune", 1, total)) if progress else None)
            click.echo(f"fine-tuned on {result['pairs']} pairs: loss {result['first_epoch_loss']:.3f} -> "
                       f"{result['last_epoch_loss']:.3f}", err=True)
        index = QAIndex.build(records, config, embedder, progress)
    index.finetuned = finetune
    index.save(out_dir)
    stats = index.stats()
    click.echo(f"indexed {stats['questions']} questions as {stats['entries']} entries "
               f"({stats['index_type']}, {stats['index_device']}) in {out_dir}")
    if index.threshold_choice is not None:
        click.echo(index.threshold_choice.describe())


@index_group.command("add")
@index_option
@qa_option
@qa_format_option
@model_option
@config_option
def add_command(index_dir, qa_paths, data_format, model, config_path) -> None:
    """Add Q&A records to an index without rebuilding it."""
    from retrieval.qa_index import QAIndex
    from training.qa_data import load_qa

    config = _config(config_path, model=model)
    records = load_qa(list(qa_paths), data_format)
    with QAIndex.edit(index_dir, config) as index:  # under the index's lock file: concurrent edits queue
        added = index.add(records)
    click.echo(f"added {len(added)} records; the index holds {len(index)} entries")


@index_group.command("remove")
@index_option
@model_option
@config_option
@click.argument("ids", nargs=-1, required=True)
def remove_command(index_dir, model, config_path, ids) -> None:
    """Remove records by id (ids merged into another entry too) without rebuilding."""
    from retrieval.qa_index import QAIndex

    with QAIndex.edit(index_dir, _config(config_path, model=model)) as index:
        removed = index.remove(ids)
    click.echo(f"removed {removed} records; the index holds {len(index)} entries")


@index_group.command("search")
@index_option
@click.option("-k", "k", type=click.IntRange(1, 1000), default=None, help="Hits per query (default from config: 5).")
@click.option("--hybrid/--dense", default=None, help="Fuse a lexical score with the dense one (default from config).")
@model_option
@config_option
@click.argument("queries", nargs=-1)
def search_command(index_dir, k, hybrid, model, config_path, queries) -> None:
    """Print the closest past questions and their answers as JSON (queries from stdin when none given)."""
    from retrieval.qa_index import QAIndex

    if not queries:
        queries = tuple(line.rstrip("\n") for line in sys.stdin if line.strip())
    if not queries:
        raise click.UsageError("give at least one query, as arguments or on stdin")
    index = QAIndex.load(index_dir, _config(config_path, model=model))
    results = [r.to_dict() for r in index.search(list(queries), k, hybrid=hybrid)]
    click.echo(json.dumps(results[0] if len(results) == 1 else results, indent=2, ensure_ascii=False))


@index_group.command("stats")
@index_option
@model_option
@config_option
def stats_command(index_dir, model, config_path) -> None:
    """Print what an index holds: entries, questions, answers, type, memory, embedding model, answer threshold."""
    from retrieval.qa_index import QAIndex

    index = QAIndex.load(index_dir, _config(config_path, model=model))
    click.echo(json.dumps(index.stats(), indent=2))


@index_group.command("evaluate")
@index_option
@click.option("--data", "data_paths", multiple=True, required=True,
              help="Labelled queries in any NLU data format (PATH or PATH@SELECTOR, repeatable).")
@qa_format_option
@click.option("--report", "report_dir", type=click.Path(file_okay=False), required=True,
              help="Where to write report.json and report.md.")
@click.option("-k", "k", type=click.IntRange(5, 1000), default=10, help="Hits searched per query (default 10).")
@click.option("--hybrid/--dense", default=None, help="Fuse a lexical score with the dense one (default from config).")
@model_option
@config_option
def evaluate_command(index_dir, data_paths, data_format, report_dir, k, hybrid, model, config_path) -> None:
    """Score the index on labelled queries: answer@1, recall@5, MRR, coverage at 95% precision."""
    from csbot.artefacts import write_json
    from retrieval.evaluation import evaluate_retrieval, report_markdown
    from retrieval.qa_index import QAIndex
    from training.data import load_dataset

    index = QAIndex.load(index_dir, _config(config_path, model=model))
    examples = load_dataset(list(data_paths), data_format)
    known = {r.intent if r.intent is not None else r.answer for r in index.records.values()}
    results = index.search([e.text for e in examples], k, hybrid=hybrid)
    metrics = evaluate_retrieval(results, [e.intent for e in examples], known)
    metrics["index"] = str(index_dir)
    out = Path(report_dir)
    write_json(out / "report.json", metrics)
    (out / "report.md").write_text(report_markdown(metrics, f"Retrieval evaluation of {index_dir}"), encoding="utf-8")
    summary = ", ".join(f"{key} {metrics[key]:.4f}" for key in ("answer_at_1", "recall_at_5", "mrr",
                                                                  "coverage_at_95_precision"))
    click.echo(f"{summary} ({metrics['n']} queries, {metrics['n_oos']} out of scope); report in {out}")
