"""GatewayMetrics: the Prometheus metrics of `GET /metrics`, with the standard client library.

Counted per request: requests by endpoint template, method and status; latency; cache results;
upstream retries. Read at scrape time from the shared store: the breaker's state per upstream and
the rows waiting for sync; from this process: rows not yet committed. With several workers the
counters live in prometheus-client's multiprocess directory (PROMETHEUS_MULTIPROC_DIR, set by
`serve` before the workers start), so any worker's scrape shows the sum of all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from aigw.gateway.circuit import CLOSED, HALF_OPEN, OPEN
from aigw.gateway.endpoints import ACTIONS, COLLECTIONS

if TYPE_CHECKING:
    from aigw.server.runtime import Runtime

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_CHILDREN = 4096  # endpoint templates × methods × statuses seen; beyond, looked up each time
# Upstream latency runs from a LAN's round trip to a run's seconds: buckets across both.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def bounded_template(template: str) -> str:
    """The endpoint label: the template when every segment is known, else one catch-all, so a
    client cannot grow the label set without bound."""
    for segment in template.split("/")[2:]:
        known = segment in COLLECTIONS or segment in ACTIONS or segment.startswith("{")
        if not known:
            return "/v1/{other}"
    return template


class GatewayMetrics:
    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        if self.multiprocess:
            from prometheus_client import values

            # prometheus-client picks its value class when first imported, which the parent
            # may have done before `serve` named the directory: each worker's values must live
            # in the shared files, or a scrape would show only the worker that answered it.
            values.ValueClass = values.MultiProcessValue()
        own = None if self.multiprocess else CollectorRegistry()
        self.requests = Counter(
            "aigw_gateway_requests",
            "Requests answered, by endpoint template, method and status.",
            ["endpoint", "method", "status"],
            registry=own,
        )
        self.latency = Histogram(
            "aigw_gateway_request_duration_seconds",
            "Time from the request's arrival to its answer's end.",
            ["endpoint"],
            buckets=BUCKETS,
            registry=own,
        )
        self.cache = Counter(
            "aigw_gateway_cache", "Cacheable reads by result.", ["result"], registry=own
        )
        self.retries = Counter(
            "aigw_gateway_upstream_retries", "Upstream attempts after the first.", registry=own
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.registry = own or CollectorRegistry()
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(self.registry)

    def watch(self, runtime: Runtime) -> None:
        """Add the values read at scrape time (breaker, pending rows) from `runtime`."""
        self.registry.register(_StoreCollector(runtime))

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        # The labelled children, looked up once per (endpoint, method, status): the library's
        # own lookup validates and joins the labels on every call, on every request.
        key = (endpoint, method, status)
        found = self._children.get(key)
        if found is None:
            label = bounded_template(endpoint)
            found = self.requests.labels(label, method, str(status)), self.latency.labels(label)
            if len(self._children) < MAX_CHILDREN:
                self._children[key] = found
        found[0].inc()
        found[1].observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _StoreCollector(Collector):
    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    def collect(self) -> Iterator[Any]:
        runtime = self.runtime
        breaker = GaugeMetricFamily(
            "aigw_gateway_breaker_state",
            "The upstream's circuit: 1 for its current state.",
            labels=["upstream", "state"],
        )
        current = runtime.circuit  # read by the /metrics handler just before
        for state in (CLOSED, OPEN, HALF_OPEN):
            breaker.add_metric([runtime.upstream_host, state], 1.0 if state == current else 0.0)
        yield breaker
        yield GaugeMetricFamily(
            "aigw_gateway_log_rows_pending_sync",
            "Rows in the local store not yet copied to the remote one.",
            value=runtime.logs.pending_count(),
        )
        yield GaugeMetricFamily(
            "aigw_gateway_log_rows_uncommitted",
            "Rows of this worker waiting for the next group commit.",
            value=runtime.writer.pending(),
        )
