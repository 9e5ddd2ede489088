"""The server's Prometheus metrics, in a registry of its own (never the process-wide default one).

Requests by channel and status, the latency of a turn, replies by source (template, retrieve, handoff
...) and hand-overs, each labelled with the channel; ``GET /metrics`` serves them as Prometheus text.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from bot.messages import Reply

#: Upper bounds (seconds) of the turn latency buckets: a template answer in milliseconds, a model call
#: under load in a second or two, a timeout at ``bot.model_timeout_seconds``.
TURN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServerMetrics:
    """The counters and histogram of one server, registered in their own :class:`CollectorRegistry`."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("csbot_http_requests", "HTTP requests answered, by channel and status",
                                ["channel", "status"], registry=self.registry)
        self.turn_seconds = Histogram("csbot_turn_seconds", "Time to answer one message, by channel",
                                      ["channel"], buckets=TURN_BUCKETS, registry=self.registry)
        self.replies = Counter("csbot_replies", "Replies sent, by channel and source (the decision behind them)",
                               ["channel", "source"], registry=self.registry)
        self.handoffs = Counter("csbot_handoffs", "Conversations handed over to a person, by channel",
                                ["channel"], registry=self.registry)

    def request(self, channel: str, status: int) -> None:
        self.requests.labels(channel=channel, status=str(status)).inc()

    def turn(self, channel: str, reply: Reply, seconds: float) -> None:
        self.turn_seconds.labels(channel=channel).observe(seconds)
        self.replies.labels(channel=channel, source=reply.source).inc()
        if reply.handoff:
            self.handoffs.labels(channel=channel).inc()

    def render(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry)


__all__ = ["ServerMetrics", "TURN_BUCKETS"]
