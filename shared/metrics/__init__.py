"""Prometheus metrics every MAE process exposes on ``/metrics``.

One process runs one service, so the default registry is that service's. What
is here answers an operator's first questions about any process:

* rate, errors and latency per entrypoint (``Metrics`` times every worker),
  HTTP answers by status (gateway routes), RPC calls as the caller saw them
  (``shared/rpc.py``: timeouts and "service not running" included);
* event handlers: lag (now − the envelope's ``occurred_at``) when a handler
  starts, requeues after a failure; events published, publishes left to the
  outbox relay, events the relay sent, and the outbox backlog (rows waiting,
  age of the oldest) read from the database at scrape time;
* the database pool (checked out, overflow) and whether the AMQP consumer is
  connected.

Domain metrics live beside their service (``services/<name>/metrics.py``).
Labels are bounded: service, entrypoint, route, method, status, event type,
cluster, outcome — never a record id or a user.

The gauges read from the database at scrape time (the pool, the outbox backlog and a
service's own ``register_database_gauges``) are in ``shared/metrics/database.py``.
"""
from __future__ import annotations

import time
import weakref
from datetime import datetime, timezone

from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.messaging import QueueConsumer
from nameko.rpc import Rpc
from nameko.timer import Timer
from nameko.web.handlers import HttpRequestHandler
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from shared.metrics.database import (ENGINES, SCRAPE_TIME_GAUGES, DatabaseGauges, register_database_gauges,
                                     register_engine)

__all__ = ["AMQP_CONNECTED", "AMQP_CONNECTION_ERRORS", "DatabaseGauges", "ENTRYPOINT_ERRORS",
           "ENTRYPOINT_LATENCY", "EVENTS_PUBLISHED", "EVENT_LAG", "EVENT_REQUEUES", "HTTP_REQUESTS",
           "LAG_BUCKETS", "LATENCY_BUCKETS", "Metrics", "OUTBOX_RELAYED", "PUBLISH_DEFERRED",
           "RPC_CALLS", "RPC_CALL_ERRORS", "SCRAPE_TIME_GAUGES", "entrypoint_kind", "exposition",
           "observe_lag", "register_database_gauges", "register_engine", "response_status",
           "rpc_call_done"]

# The engines the scrape-time gauges read, by service (the same dict: tests patch it here).
_engines = ENGINES

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)

ENTRYPOINT_LATENCY = Histogram(
    "mae_entrypoint_duration_seconds",
    "Time spent in a service entrypoint (RPC method, event handler, HTTP route, timer).",
    ["service", "kind", "entrypoint"],
    buckets=LATENCY_BUCKETS,
)
ENTRYPOINT_ERRORS = Counter(
    "mae_entrypoint_errors_total",
    "Entrypoint calls that raised, by error type (domain errors included: a 404 raises NotFound).",
    ["service", "kind", "entrypoint", "error"],
)
HTTP_REQUESTS = Counter(
    "mae_http_requests_total",
    "HTTP requests answered by a route, by the route's entrypoint, HTTP method and status code.",
    ["service", "entrypoint", "method", "status"],
)
RPC_CALLS = Histogram(
    "mae_rpc_client_duration_seconds",
    "RPC calls made by this process, as the caller waited for them, by target service and method.",
    ["target", "method"],
    buckets=LATENCY_BUCKETS,
)
RPC_CALL_ERRORS = Counter(
    "mae_rpc_client_errors_total",
    "RPC calls made by this process that failed (Unavailable = timed out or service not running).",
    ["target", "method", "error"],
)
EVENT_LAG = Histogram(
    "mae_event_lag_seconds",
    "Seconds from an event's occurred_at to the moment a handler started on it.",
    ["service", "handler"],
    buckets=LAG_BUCKETS,
)
EVENT_REQUEUES = Counter(
    "mae_event_requeues_total",
    "Events a handler failed on and put back on its queue (to be tried again).",
    ["service", "handler"],
)
EVENTS_PUBLISHED = Counter(
    "mae_events_published_total",
    "Events published (staged in the outbox when the worker has a database), by event type.",
    ["service", "event"],
)
PUBLISH_DEFERRED = Counter(
    "mae_event_publish_deferred_total",
    "Publishes after commit that failed and were left to the outbox relay.",
    ["service"],
)
OUTBOX_RELAYED = Counter(
    "mae_outbox_relayed_total",
    "Events the outbox relay sent because their worker did not (crash or broker trouble).",
    ["service"],
)
AMQP_CONNECTED = Gauge(
    "mae_amqp_connected",
    "1 while this process's AMQP consumer is connected and consuming, 0 after a connection error.",
    ["service"],
)
AMQP_CONNECTION_ERRORS = Counter(
    "mae_amqp_connection_errors_total",
    "Failed attempts of this process's AMQP consumer to (re)connect to the broker.",
    ["service"],
)


def entrypoint_kind(entrypoint) -> str:
    kind = getattr(entrypoint, "_mae_kind", None)
    if kind is None:
        kind = entrypoint._mae_kind = _kind_of(entrypoint)
    return kind


def _kind_of(entrypoint) -> str:
    if isinstance(entrypoint, Rpc):
        return "rpc"
    if isinstance(entrypoint, EventHandler) or hasattr(entrypoint, "bindings"):
        return "event"  # nameko's handlers, and batch handlers (services/deploy/batching.py)
    if isinstance(entrypoint, HttpRequestHandler):
        return "http"
    if isinstance(entrypoint, Timer):
        return "timer"
    return "other"


def exposition() -> tuple[int, dict, str]:
    """The body of a ``/metrics`` response."""
    return 200, {"Content-Type": CONTENT_TYPE_LATEST}, generate_latest().decode()


def response_status(result, exc_info) -> int:
    """The HTTP status a route's result or error becomes (as ``shared.web`` answers it)."""
    if exc_info is not None:
        from shared.errors import MaeError, http_status

        exc = exc_info[1]
        if isinstance(exc, MaeError):
            return http_status(exc)
        return getattr(exc, "code", None) if isinstance(getattr(exc, "code", None), int) else 500
    from shared.web import status_of

    return status_of(result)


def _occurred_at(event) -> float | None:
    stamp = event.get("occurred_at") if isinstance(event, dict) else None
    if not isinstance(stamp, str):
        return None
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def observe_lag(service: str, handler: str, payload) -> None:
    """Lag of one event, or of each event of a batch."""
    events = payload if isinstance(payload, list) else (payload,)
    now = time.time()
    histogram = EVENT_LAG.labels(service, handler)
    for event in events:
        occurred = _occurred_at(event)
        if occurred is not None:
            histogram.observe(max(0.0, now - occurred))


def rpc_call_done(target: str, method: str, started: float, error: BaseException | None) -> None:
    RPC_CALLS.labels(target, method).observe(time.perf_counter() - started)
    if error is not None:
        RPC_CALL_ERRORS.labels(target, method, type(error).__name__).inc()


class Metrics(DependencyProvider):
    """Times and counts every worker; registers the service's database pool for the pool gauges."""

    def __init__(self):
        self.started: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

    def start(self):
        from shared.db import Database

        for dependency in self.container.dependencies:
            if isinstance(dependency, Database) and getattr(dependency, "engine", None) is not None:
                register_engine(self.container.service_name, dependency.engine)

    def worker_setup(self, worker_ctx):
        self.started[worker_ctx] = time.perf_counter()
        entrypoint = worker_ctx.entrypoint
        if worker_ctx.args and entrypoint_kind(entrypoint) == "event":
            observe_lag(self.container.service_name, entrypoint.method_name, worker_ctx.args[0])

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self.started.pop(worker_ctx, None)
        if started is None:
            return
        entrypoint = worker_ctx.entrypoint
        kind = entrypoint_kind(entrypoint)
        labels = (self.container.service_name, kind, entrypoint.method_name)
        ENTRYPOINT_LATENCY.labels(*labels).observe(time.perf_counter() - started)
        if exc_info is not None:
            ENTRYPOINT_ERRORS.labels(*labels, exc_info[0].__name__).inc()
        if kind == "http":
            request = worker_ctx.args[0] if worker_ctx.args else None
            HTTP_REQUESTS.labels(self.container.service_name, entrypoint.method_name,
                                 getattr(request, "method", "?"), str(response_status(result, exc_info))).inc()


# -- AMQP consumer health -----------------------------------------------------------------------
# nameko's QueueConsumer (which consumes every RPC and event queue of a container) has
# kombu's connection callbacks; wrapping two of them is the least intrusive way to know
# whether this process is actually connected to the broker.

def _track_amqp_health() -> None:
    if getattr(QueueConsumer, "_mae_tracked", False):
        return
    ready, failed = QueueConsumer.on_consume_ready, QueueConsumer.on_connection_error

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        AMQP_CONNECTED.labels(self.container.service_name).set(1)
        return ready(self, connection, channel, consumers, **kwargs)

    def on_connection_error(self, exc, interval):
        AMQP_CONNECTED.labels(self.container.service_name).set(0)
        AMQP_CONNECTION_ERRORS.labels(self.container.service_name).inc()
        return failed(self, exc, interval)

    QueueConsumer.on_consume_ready = on_consume_ready
    QueueConsumer.on_connection_error = on_connection_error
    QueueConsumer._mae_tracked = True


_track_amqp_health()
