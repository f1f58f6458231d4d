"""Prometheus metrics on loopback (optional: ``[metrics] enabled = true``).

Owns the counters operators graph: messages received by decision and by
rule, refusals by SMTP code, delivery attempts and failures, the outbox by
state (read from the database at scrape time, so every process reports the
shared queue), and the DATA -> reply latency. The registry is private to
the relay, and the HTTP server is prometheus_client's own, in its thread.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from relay.intake import Outcome
from relay.ops import outbox
from relay.store.db import Store
from relay.store.plain import SqlAlchemyReader

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _QueueDepth(Collector):
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "relay_outbox_messages", "Mail in the outbox, by delivery state", labels=["state"]
        )
        with self.store.session() as session:
            counted = outbox.counts(SqlAlchemyReader(session))
        for state, count in counted.items():
            family.add_metric([state.value], count)
        yield family


class Metrics:
    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter(
            "relay_messages_received", "Messages received, by decision",
            ["decision"], registry=self.registry,
        )  # fmt: skip
        self.rule_hits = Counter(
            "relay_rule_hits", "Rule hits on received messages", ["rule"], registry=self.registry
        )
        self.refused = Counter(
            "relay_messages_refused", "Messages refused, by SMTP reply", ["reply"],
            registry=self.registry,
        )  # fmt: skip
        self.delivery_attempts = Counter(
            "relay_delivery_attempts", "Delivery attempts, by outcome", ["outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "relay_data_reply_seconds", "Time from the end of DATA to the reply",
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.registry.register(_QueueDepth(store))

    def serve(self, host: str, port: int) -> None:
        start_http_server(port, addr=host, registry=self.registry)

    def observe(self, outcome: Outcome, seconds: float) -> None:
        self.latency.observe(seconds)
        if outcome.action is None:
            self.refused.labels(reply=f"{outcome.reply.code} {outcome.reply.status}").inc()
            return
        decision = {"accept": "forwarded"}.get(str(outcome.action), str(outcome.action))
        self.received.labels(decision=decision).inc(len(outcome.message_ids) or 1)
        for rule in {hit.rule for hit in outcome.hits}:
            self.rule_hits.labels(rule=rule).inc()

    def delivery_attempt(self, outcome: str) -> None:
        """outcome: delivered, deferred or failed."""
        self.delivery_attempts.labels(outcome=outcome).inc()
