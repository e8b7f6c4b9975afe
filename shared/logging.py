"""JSON log lines that carry nameko's call id and the trace id.

``CallContext`` (a dependency provider every service declares) stores the
worker's call-id stack in a thread-local — green-thread-local under eventlet's
monkey patch — and ``CallContextFilter`` copies it onto each log record, so a
line written anywhere during a worker (our code, SQLAlchemy, requests) can be
joined to the RPC chain that caused it.

The same provider is the worker's tracing hook (``shared/tracing.py``): it
turns tracing on for the process when an OTLP endpoint is configured, and
opens/closes each worker's span, so a log line also carries ``trace_id`` and
``span_id`` when tracing is on. When it is off this costs one boolean test.
"""
from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timezone

from nameko.extensions import DependencyProvider

from shared import tracing

_local = threading.local()

# Attributes every LogRecord has; anything else was passed via `extra=`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_CONTEXT = ("call_id", "call_id_stack", "trace_id", "span_id")


class CallContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.call_id = getattr(_local, "call_id", None)
        record.call_id_stack = getattr(_local, "call_id_stack", None)
        ids = tracing.current_ids() if tracing.ENABLED else None
        record.trace_id, record.span_id = ids if ids else (None, None)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            # datetime, not time.strftime: glibc's strftime re-reads the timezone each call
            "time": datetime.fromtimestamp(record.created, timezone.utc)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        call_id = getattr(record, "call_id", None)
        if call_id:
            entry["call_id"] = call_id
            entry["call_id_stack"] = record.call_id_stack
        trace_id = getattr(record, "trace_id", None)
        if trace_id:
            entry["trace_id"] = trace_id
            entry["span_id"] = record.span_id
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry and key not in _CONTEXT:
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class CallContext(DependencyProvider):
    """Makes the current worker's call id (and trace) visible to logging."""

    def setup(self):
        tracing.configure(self.container.service_name, self.container.config)

    def worker_setup(self, worker_ctx):
        _local.call_id = worker_ctx.call_id
        _local.call_id_stack = list(worker_ctx.call_id_stack)
        if tracing.ENABLED:
            tracing.begin_worker(worker_ctx)

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        if tracing.ENABLED:
            from shared.metrics import entrypoint_kind, response_status

            status = response_status(result, exc_info) if entrypoint_kind(worker_ctx.entrypoint) == "http" else None
            tracing.worker_result(worker_ctx, exc_info, status)

    def worker_teardown(self, worker_ctx):
        _local.call_id = None
        _local.call_id_stack = None
        if tracing.ENABLED:
            tracing.end_worker(worker_ctx)
