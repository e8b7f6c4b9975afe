"""JSON log lines that carry nameko's call id.

``CallContext`` (a dependency provider every service declares) stores the
worker's call-id stack in a thread-local — green-thread-local under eventlet's
monkey patch — and ``CallContextFilter`` copies it onto each log record, so a
line written anywhere during a worker (our code, SQLAlchemy, requests) can be
joined to the RPC chain that caused it.
"""
from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timezone

from nameko.extensions import DependencyProvider

_local = threading.local()

# Attributes every LogRecord has; anything else was passed via `extra=`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def current_call_id() -> str | None:
    return getattr(_local, "call_id", None)


class CallContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.call_id = getattr(_local, "call_id", None)
        record.call_id_stack = getattr(_local, "call_id_stack", None)
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
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry and key not in ("call_id", "call_id_stack"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class CallContext(DependencyProvider):
    """Makes the current worker's call id visible to logging."""

    def worker_setup(self, worker_ctx):
        _local.call_id = worker_ctx.call_id
        _local.call_id_stack = list(worker_ctx.call_id_stack)

    def worker_teardown(self, worker_ctx):
        _local.call_id = None
        _local.call_id_stack = None
