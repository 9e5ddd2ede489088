"""Q&A records from every source the project reads: Q&A files, transcripts, and any NLU data format.

Q&A JSONL/CSV and chat transcripts are read by :mod:`retrieval.sources`; anything else goes through the
NLU importers, each example becoming a record whose question is its text and whose answer key is its
intent (examples without an intent are skipped).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from csbot.errors import DataError
from nlu.schema import Example
from retrieval.records import QARecord
from retrieval.sources import detect_source, load_records, source_formats
from training.data import DataSpec, load_dataset

log = logging.getLogger(__name__)


def records_from_examples(examples: Sequence[Example], source: str) -> list[QARecord]:
    """One record per example that has an intent: question = text, answer = intent = the intent."""
    records = []
    for number, example in enumerate(examples, start=1):
        if not example.intent:
            continue
        records.append(QARecord(id=f"{source}:{number}", question=example.text, answer=example.intent,
                                intent=example.intent, source=source))
    return records


def load_qa(specs: Sequence[str | Path], format: str | None = None) -> list[QARecord]:
    """Records from every spec (``PATH`` or ``PATH@SELECTOR``), Q&A formats first, then NLU formats."""
    if not specs:
        raise DataError("no Q&A data given")
    records: list[QARecord] = []
    sources: set[str] = set()
    for raw in specs:
        spec = DataSpec.parse(raw)
        if not spec.path.exists():
            raise DataError("no such file or directory", spec.path)
        qa_format = format if format in source_formats() else None
        if qa_format is None and format is None and spec.selector is None:
            qa_format = detect_source(spec.path)
        if qa_format is not None:
            records.extend(load_records(spec.path, qa_format))
        else:
            examples = load_dataset([spec], format)
            source = spec.path.name + (f"@{spec.selector}" if spec.selector else "")
            if source in sources:  # one file name in two folders (nlupp/banking/fold0.json, nlupp/hotels/fold0.json)
                source = str(spec)
            sources.add(source)
            records.extend(records_from_examples(examples, source))
    if not records:
        raise DataError("the Q&A data holds no records", Path(str(specs[0])))
    log.info("loaded %d Q&A records from %d source(s)", len(records), len(specs))
    return records
