"""One way to plug things in: every pluggable kind, its built-in names, and the one resolver.

A setting that picks a backend takes a registered name (``redis``) or a dotted path to a class of one's
own (``package.module:Class`` or ``package.module.Class``). :meth:`Registry.resolve` turns either into
the class, checks that it implements the kind's interface completely, and raises a
:class:`~csbot.errors.ConfigError` naming the setting otherwise; nothing falls back silently.

The registries below hold dotted paths, not classes, so this module imports nothing heavy and knows no
package above ``csbot``: a backend's module is imported only when it is chosen. Their names are the one
source of the CLI's choices and of the errors' "known: ..." lists.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from csbot.errors import ConfigError


class ImportProblem(ConfigError):
    """A dotted path names nothing importable; ``reason`` is the message without the setting's name."""

    def __init__(self, setting: str, reason: str) -> None:
        self.setting, self.reason = setting, reason
        super().__init__(f"{setting}: {reason}")


def import_object(target: str, setting: str = "setting") -> Any:
    """The object at ``package.module:attr`` or ``package.module.attr``; :class:`ImportProblem` otherwise."""
    if ":" in target:
        module_name, _, attr = target.partition(":")
    else:
        module_name, _, attr = target.rpartition(".")
    if not module_name or not attr:
        raise ImportProblem(setting, f"cannot import {target!r}: expected a dotted path such as package.module:Class")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or any error raised while the module runs
        raise ImportProblem(setting, f"cannot import {target!r}: {exc.__class__.__name__}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise ImportProblem(setting, f"cannot import {target!r}: {module_name!r} has no attribute {attr!r}") from exc
    return obj


@dataclass(frozen=True)
class Registry:
    """The built-in backends of one pluggable kind, by name, and the interface they implement.

    ``setting`` is the config key (or flag) a backend is chosen by, named in every error; ``base`` the
    dotted path of the interface (an ABC); ``entries`` maps each built-in name to its dotted path.
    """

    setting: str
    base: str
    entries: Mapping[str, str] = field(default_factory=dict)

    def names(self) -> list[str]:
        """The built-in names, in registration order (the order detection tries them in, where it matters)."""
        return list(self.entries)

    def is_known(self, name: str) -> bool:
        return name in self.entries

    def resolve(self, name: str) -> type:
        """The class ``name`` stands for: a built-in name or a dotted path to a complete subclass of ``base``."""
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{self.setting}: expected a name or a dotted path, got {name!r}")
        target = self.entries.get(name)
        if target is None:
            if "." not in name and ":" not in name:
                raise ConfigError(f"{self.setting}: unknown {name!r}; known: {', '.join(self.entries)}, "
                                  "or a dotted path such as package.module:Class")
            target = name
        cls = import_object(target, self.setting)
        base = import_object(self.base, self.setting)
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise ConfigError(f"{self.setting} {name!r} is not a subclass of {base.__module__}.{base.__qualname__}")
        missing = sorted(getattr(cls, "__abstractmethods__", ()) or ())
        if missing:
            raise ConfigError(f"{self.setting} {name!r} does not implement {', '.join(missing)}")
        return cls


#: Where conversations are kept between messages (``sessions.store``).
SESSION_STORES = Registry("sessions.store", "bot.sessions.base:SessionStore", {
    "memory": "bot.sessions.memory:MemorySessionStore",
    "redis": "bot.sessions.redis:RedisSessionStore",
})

#: Where transcript turns are recorded (``transcripts.sinks``).
TRANSCRIPT_SINKS = Registry("transcripts.sinks", "bot.transcripts.base:TranscriptSink", {
    "jsonl": "bot.transcripts.jsonl:JsonlTranscriptLog",
    "redis_stream": "bot.transcripts.redis_stream:RedisTranscriptStream",
})

#: What decides the bot's next move (the domain's ``policy``).
POLICIES = Registry("policy", "bot.policy.base:Policy", {
    "rules": "bot.policy.rules:RulePolicy",
})

#: How customers reach the bot (``channels``).
CHANNELS = Registry("channels", "bot.channels.base:InputChannel", {
    "repl": "bot.channels.repl:ReplChannel",
    "rest": "bot.channels.rest:RestChannel",
    "slack": "bot.channels.slack:SlackChannel",
    "telegram": "bot.channels.telegram:TelegramChannel",
})

#: How a trained NLU model is run (``nlu.backend``).
NLU_BACKENDS = Registry("nlu.backend", "nlu.runners.base:Runner", {
    "torch": "nlu.runners.torch_runner:TorchRunner",
    "onnx": "nlu.runners.onnx:OnnxRunner",
    "onnx-int8": "nlu.runners.onnx:QuantizedOnnxRunner",
})

#: The FAISS index kinds behind a Q&A index (``retrieval.index_type``; ``auto`` picks one by size).
VECTOR_INDEXES = Registry("retrieval.index_type", "retrieval.index.base:VectorIndex", {
    "flat": "retrieval.index.flat:FlatIndex",
    "hnsw": "retrieval.index.hnsw:HNSWIndex",
    "ivf": "retrieval.index.ivf:IVFIndex",
})

#: Training data formats (``--format``), in the order detection tries them: the formats that peek into
#: ``*.json`` files go most specific first (Rasa JSON, CLINC150, NLU++); the rest look at names.
IMPORTERS = Registry("--format", "training.importers.base:Importer", {
    "rasa_json": "training.importers.rasa_json:RasaJsonImporter",
    "clinc150": "training.importers.clinc150:Clinc150Importer",
    "nlupp": "training.importers.nlupp:NluppImporter",
    "bio": "training.importers.bio:BioImporter",
    "csv": "training.importers.csv_table:CsvImporter",
    "jsonl": "training.importers.jsonl:JsonlImporter",
    "rasa_yaml": "training.importers.rasa_yaml:RasaYamlImporter",
})

#: Q&A and transcript file formats an index is built from (``csbot index ... --format``), in detection
#: order: Q&A records before transcripts of the same file type.
QA_SOURCES = Registry("--format", "retrieval.sources.base:QASource", {
    "qa_csv": "retrieval.sources.qa_csv:CsvQASource",
    "qa_jsonl": "retrieval.sources.qa_jsonl:JsonlQASource",
    "transcripts_json": "retrieval.sources.transcripts:JsonTranscripts",
    "transcripts_csv": "retrieval.sources.transcripts:CsvTranscripts",
})

__all__ = [
    "CHANNELS",
    "IMPORTERS",
    "NLU_BACKENDS",
    "POLICIES",
    "QA_SOURCES",
    "ImportProblem",
    "Registry",
    "SESSION_STORES",
    "TRANSCRIPT_SINKS",
    "VECTOR_INDEXES",
    "import_object",
]
