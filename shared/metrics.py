"""Prometheus metrics for nameko entrypoints.

One process runs one service, so the default registry is that service's; the
``Metrics`` provider times every worker and counts its errors by entrypoint.
"""
from __future__ import annotations

import time
import weakref

from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

ENTRYPOINT_LATENCY = Histogram(
    "mae_entrypoint_duration_seconds",
    "Time spent in a service entrypoint (RPC method, event handler, HTTP route).",
    ["service", "kind", "entrypoint"],
    buckets=LATENCY_BUCKETS,
)
ENTRYPOINT_ERRORS = Counter(
    "mae_entrypoint_errors_total",
    "Entrypoint calls that raised, by error type.",
    ["service", "kind", "entrypoint", "error"],
)


def entrypoint_kind(entrypoint) -> str:
    if isinstance(entrypoint, Rpc):
        return "rpc"
    if isinstance(entrypoint, EventHandler):
        return "event"
    return "http"


def exposition() -> tuple[int, dict, str]:
    """The body of a ``/metrics`` response."""
    return 200, {"Content-Type": CONTENT_TYPE_LATEST}, generate_latest().decode()


class Metrics(DependencyProvider):
    def __init__(self):
        self.started: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

    def worker_setup(self, worker_ctx):
        self.started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self.started.pop(worker_ctx, None)
        if started is None:
            return
        entrypoint = worker_ctx.entrypoint
        labels = (self.container.service_name, entrypoint_kind(entrypoint), entrypoint.method_name)
        ENTRYPOINT_LATENCY.labels(*labels).observe(time.perf_counter() - started)
        if exc_info is not None:
            ENTRYPOINT_ERRORS.labels(*labels, exc_info[0].__name__).inc()
