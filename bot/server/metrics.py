"""The server's Prometheus metrics, in a registry of its own (never the process-wide default one).

Requests by channel and status, the latency of a turn, replies by source (the decision behind them:
template, retrieve, handoff ...), fallbacks and hand-overs, each labelled with the channel; the sizes of the
batched model calls (``model``: ``nlu`` or ``retrieval``), the turns in flight (the queue's depth) and the
turns refused (``reason``: ``overloaded`` or ``rate_limited``). ``GET /metrics`` serves them as Prometheus text.

With several workers (``csbot serve --workers N``) the parent sets ``PROMETHEUS_MULTIPROC_DIR`` to a fresh
folder before the workers start: every worker writes its values there and any worker's ``/metrics`` answers
the sum over all of them (prometheus-client's multiprocess mode; the gauge sums the live workers only).
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.messages import Reply
from bot.turns import Versions

#: Upper bounds (seconds) of the turn latency buckets: a template answer in milliseconds, a model call
#: under load in a second or two, a timeout at ``bot.model_timeout_seconds``.
TURN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Upper bounds of the batch size buckets (``server.max_batch`` is 32 by default).
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
#: The environment variable prometheus-client reads to share values between processes.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The folder the workers share their metric values in, when serving with several workers."""
    return os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower()) or None


class ServerMetrics:
    """The counters, histograms and gauge of one server, registered in their own :class:`CollectorRegistry`."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter("csbot_http_requests", "HTTP requests answered, by channel and status",
                                ["channel", "status"], registry=registry)
        self.turn_seconds = Histogram("csbot_turn_seconds", "Time to answer one message, by channel",
                                      ["channel"], buckets=TURN_BUCKETS, registry=registry)
        self.replies = Counter("csbot_replies", "Replies sent, by channel and source (the decision behind them)",
                               ["channel", "source"], registry=registry)
        self.turn_parts = Counter("csbot_turn_part_seconds", "Seconds of the turns spent in the NLU parse, the Q&A "
                                  "search and the session store (lock, load, save), by part", ["part"],
                                  registry=registry)
        self.fallbacks = Counter("csbot_fallbacks", "Replies that were the fallback (nothing better to say), "
                                 "by channel", ["channel"], registry=registry)
        self.handoffs = Counter("csbot_handoffs", "Conversations handed over to a person, by channel",
                                ["channel"], registry=registry)
        self.batch_size = Histogram("csbot_model_batch_size", "Messages in one batched model call, by model "
                                    "(nlu, retrieval)", ["model"], buckets=BATCH_BUCKETS, registry=registry)
        self.turns_in_flight = Gauge("csbot_turns_in_flight", "Turns being answered or waiting (the queue's "
                                     "depth), summed over the live workers", registry=registry,
                                     multiprocess_mode="livesum")
        self.model_version = Gauge("csbot_model_version", "1 for the NLU model and Q&A index versions this worker "
                                   "answers with (kind: model or index), 0 for those it answered with before",
                                   ["kind", "version"], registry=registry, multiprocess_mode="liveall")
        self.reloads = Counter("csbot_model_reloads", "Looks at the model registry after a change, by outcome "
                               "(switched, unchanged, failed: the running versions kept serving)", ["outcome"],
                               registry=registry)
        self._versions: dict[str, str] = {}
        self.rejected = Counter("csbot_turns_rejected", "Messages refused before the bot saw them, by channel "
                                "and reason (overloaded: 503, rate_limited: 429)", ["channel", "reason"],
                                registry=registry)

    def request(self, channel: str, status: int) -> None:
        self.requests.labels(channel=channel, status=str(status)).inc()

    def turn(self, channel: str, reply: Reply, seconds: float) -> None:
        self.turn_seconds.labels(channel=channel).observe(seconds)
        self.replies.labels(channel=channel, source=reply.source).inc()
        timings = reply.details.timings
        for part, ms in (("nlu", timings.nlu_ms), ("retrieval", timings.retrieval_ms), ("store", timings.store_ms)):
            if ms:
                self.turn_parts.labels(part=part).inc(ms / 1000)
        if reply.source == "fallback":
            self.fallbacks.labels(channel=channel).inc()
        if reply.handoff:
            self.handoffs.labels(channel=channel).inc()

    def batch(self, model: str, size: int) -> None:
        self.batch_size.labels(model=model).observe(size)

    def versions(self, versions: Versions) -> None:
        """Show ``versions`` as the running ones (the previous ones drop to 0)."""
        for kind, version in (("model", versions.model), ("index", versions.index)):
            previous = self._versions.get(kind)
            if previous is not None and previous != version:
                self.model_version.labels(kind=kind, version=previous).set(0)
            if version:
                self.model_version.labels(kind=kind, version=version).set(1)
                self._versions[kind] = version

    def reload(self, outcome: str) -> None:
        self.reloads.labels(outcome=outcome).inc()

    def reject(self, channel: str, reason: str) -> None:
        self.rejected.labels(channel=channel, reason=reason).inc()

    def render(self) -> bytes:
        """Every metric in the Prometheus text format: this process's, or every worker's summed."""
        path = multiprocess_dir()
        if path is None:
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)
        return generate_latest(registry)


__all__ = ["BATCH_BUCKETS", "MULTIPROC_ENV", "ServerMetrics", "TURN_BUCKETS", "multiprocess_dir"]
