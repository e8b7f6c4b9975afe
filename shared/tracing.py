"""OpenTelemetry tracing across the gateway, RPC, events and cluster calls.

Off by default, and then free: no SDK provider is installed, ``ENABLED`` stays
False and every helper here returns at its first line (the API's no-op tracer
is never even asked). It turns on per process when ``OTEL_EXPORTER_OTLP_ENDPOINT``
is set (config key or environment): spans then go to ``<endpoint>/v1/traces``
over OTLP/HTTP in batches (``OTEL_BSP_*`` tune the batching, as the SDK says).

How the trace crosses processes: nameko sends a worker's ``context_data`` as
AMQP headers named ``nameko.<key>`` and gives the receiving worker those keys
back. We put the W3C ``traceparent`` (and ``tracestate``) there:

* a worker (RPC, event handler, HTTP route) starts its span as the child of the
  ``traceparent`` it received (HTTP: the request's own header), and makes it the
  current span of its green thread (``CallContext`` in ``shared/logging.py``
  calls ``begin_worker``/``end_worker``);
* an outgoing RPC call gets a CLIENT span, and the message carries that span's
  context (``shared/rpc.py``);
* an event carries the context of the span that published it; an event staged in
  the outbox stores that context in its row, so the relay, sending it later from
  no worker at all, still continues the right trace (``shared/events.py``);
* calls to a cluster's API server are CLIENT spans under whatever is current
  (``services/cluster/mke/client.py`` calls ``span``).

Timers, probes (``ping``, ``/healthz``, ``/readyz``) and scrapes are not traced:
they would bury the traces people look for.
"""
from __future__ import annotations

import contextlib
import logging
import os
import weakref

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

ENDPOINT_KEY = "OTEL_EXPORTER_OTLP_ENDPOINT"
HEADER_PREFIX = "nameko."
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
QUIET_METHODS = frozenset({"ping", "healthz", "readyz", "prometheus_metrics"})

ENABLED = False
_tracer: "trace.Tracer | None" = None
_provider = None
_propagator = TraceContextTextMapPropagator()
_workers: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def endpoint_from(config: dict | None) -> str | None:
    return (config or {}).get(ENDPOINT_KEY) or os.environ.get(ENDPOINT_KEY) or None


def configure(service: str, config: dict | None = None) -> bool:
    """Install the SDK's tracer provider for this process if an endpoint is configured.

    Idempotent (one provider per process, named after the first service); returns
    whether tracing is on.
    """
    global ENABLED, _tracer, _provider
    if _provider is not None:
        return True
    endpoint = endpoint_from(config)
    if not endpoint:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    traces_url = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") \
        or endpoint.rstrip("/") + "/v1/traces"
    provider = TracerProvider(resource=Resource.create({"service.name": service,
                                                        "service.namespace": "mae"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url, timeout=5)))
    trace.set_tracer_provider(provider)
    _provider, _tracer, ENABLED = provider, provider.get_tracer("mae"), True
    log.info("tracing on: spans go to %s", traces_url, extra={"service": service})
    return True


def shutdown() -> None:
    """Flush and stop the exporter (tests; ``nameko run`` flushes at exit)."""
    if _provider is not None:
        _provider.force_flush(5000)


# -- context in and out of messages -------------------------------------------------------

def headers_for(span=None) -> dict:
    """``{"traceparent": ..., ["tracestate": ...]}`` for ``span`` (default: the current one);
    ``{}`` when tracing is off or there is no span."""
    if not ENABLED:
        return {}
    carrier: dict = {}
    ctx = trace.set_span_in_context(span) if span is not None else None
    _propagator.inject(carrier, context=ctx)
    return carrier


def message_headers(carrier: dict) -> dict:
    """The same, named as nameko names context headers (``nameko.traceparent``)."""
    return {HEADER_PREFIX + key: value for key, value in carrier.items()}


def _parent(carrier) -> "otel_context.Context | None":
    if not carrier or "traceparent" not in carrier:
        return None
    return _propagator.extract({k: carrier[k] for k in ("traceparent", "tracestate") if k in carrier})


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex of the current span, for log lines; None when off."""
    if not ENABLED:
        return None
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


# -- spans ----------------------------------------------------------------------------------

@contextlib.contextmanager
def span(name: str, kind=trace.SpanKind.INTERNAL, attributes: dict | None = None,
         only_in_trace: bool = True):
    """A child span of the current one around a block; nothing at all when off.

    ``only_in_trace``: no span when nothing is current (a green thread spawned
    without the worker's context), so stray calls do not start traces of their own.
    """
    if not ENABLED or (only_in_trace and not trace.get_current_span().get_span_context().is_valid):
        yield None
        return
    with _tracer.start_as_current_span(name, kind=kind, attributes=attributes,
                                       record_exception=True, set_status_on_exception=True) as current:
        yield current


def start_client_span(name: str, attributes: dict | None = None):
    """A CLIENT span under the current one, not made current (ended by the caller)."""
    if not ENABLED:
        return None
    return _tracer.start_span(name, kind=trace.SpanKind.CLIENT, attributes=attributes)


def end_span(span_, error: BaseException | None = None) -> None:
    if span_ is None:
        return
    if error is not None:
        from shared.errors import MaeError, http_status

        span_.record_exception(error)
        span_.set_attribute("error.type", type(error).__name__)
        if not (isinstance(error, MaeError) and http_status(error) < 500):  # a 404 is an answer
            span_.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__name__))
    span_.end()


def _describe(worker_ctx):
    """(span name, kind, parent carrier, attributes) of a worker, or None to leave it untraced."""
    from nameko.events import EventHandler
    from nameko.rpc import Rpc
    from nameko.timer import Timer
    from nameko.web.handlers import HttpRequestHandler

    entrypoint = worker_ctx.entrypoint
    service, method = worker_ctx.service_name, entrypoint.method_name
    if isinstance(entrypoint, Timer) or method in QUIET_METHODS:
        return None
    if isinstance(entrypoint, HttpRequestHandler):
        request = worker_ctx.args[0] if worker_ctx.args else None
        if request is None or request.path in QUIET_PATHS:
            return None
        return (f"{request.method} {entrypoint.url}", trace.SpanKind.SERVER, request.headers,
                {"http.request.method": request.method, "http.route": entrypoint.url,
                 "url.path": request.path, "mae.service": service})
    data = worker_ctx.data
    if isinstance(entrypoint, Rpc):
        return (f"{service}.{method}", trace.SpanKind.SERVER, data,
                {"rpc.system": "nameko", "rpc.service": service, "rpc.method": method})
    attributes = {"messaging.system": "rabbitmq", "mae.service": service, "mae.handler": method}
    if isinstance(entrypoint, EventHandler):
        attributes["messaging.destination.name"] = f"{entrypoint.source_service}.{entrypoint.event_type}"
        payload = worker_ctx.args[0] if worker_ctx.args else None
        if isinstance(payload, dict) and payload.get("event_id"):
            attributes["messaging.message.id"] = str(payload["event_id"])
    elif worker_ctx.args and isinstance(worker_ctx.args[0], list):
        attributes["messaging.batch.message_count"] = len(worker_ctx.args[0])
    return f"{service}.{method}", trace.SpanKind.CONSUMER, data, attributes


def begin_worker(worker_ctx) -> None:
    """Start the worker's span and make it current in this green thread."""
    if not ENABLED:
        return
    described = _describe(worker_ctx)
    if described is None:
        return
    name, kind, carrier, attributes = described
    worker_span = _tracer.start_span(name, context=_parent(carrier), kind=kind, attributes=attributes)
    token = otel_context.attach(trace.set_span_in_context(worker_span))
    _workers[worker_ctx] = (worker_span, token)


def worker_result(worker_ctx, exc_info=None, status: int | None = None) -> None:
    """Note how the worker ended: an HTTP status, an error (domain errors are answers, not faults)."""
    entry = _workers.get(worker_ctx) if ENABLED else None
    if entry is None:
        return
    worker_span = entry[0]
    if status is not None:
        worker_span.set_attribute("http.response.status_code", status)
    if exc_info is not None:
        from shared.errors import MaeError

        worker_span.record_exception(exc_info[1])
        worker_span.set_attribute("error.type", exc_info[0].__name__)
        answered = isinstance(exc_info[1], MaeError) and (status is None or status < 500)
        if not answered:
            worker_span.set_status(trace.Status(trace.StatusCode.ERROR, exc_info[0].__name__))


def end_worker(worker_ctx) -> None:
    entry = _workers.pop(worker_ctx, None) if ENABLED else None
    if entry is None:
        return
    worker_span, token = entry
    worker_span.end()
    try:
        otel_context.detach(token)
    except Exception:  # detached elsewhere (another green thread): nothing to undo
        pass
