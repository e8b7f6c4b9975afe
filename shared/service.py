"""What every MAE service has: its database, Redis, metrics, log context, health.

A service subclasses ``ServiceBase`` and sets ``name``; it inherits the ``ping``
RPC (the gateway's ``/readyz`` asks it) and its own ``/metrics``, ``/healthz`` and
``/readyz`` (the same checks as ``ping``) endpoints, served outside the worker pool.
"""
from __future__ import annotations

import functools
import os
import socket
import time

from nameko.timer import Timer
from sqlalchemy import text

from shared import debug
from shared.config import RequiredSettings
from shared.db import Database
from shared.errors import EXPECTED
from shared.logging import CallContext
from shared.metrics import Metrics, exposition
from shared.probes import BrokerHealth, probe
from shared.redis import Redis
from shared.rpc import ReliableRpc

# Domain errors are expected outcomes, not crashes: nameko logs them as warnings.
# ReliableRpc: a reply lost to a broker restart must not kill the service (shared.rpc).
rpc = functools.partial(ReliableRpc.decorator, expected_exceptions=EXPECTED)

INSTANCE = f"{socket.gethostname()}:{os.getpid()}"

debug.install()  # kill -USR1 <pid>: every green thread's stack on stderr


def check(probe) -> dict:
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # any failure of the dependency is the answer here
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}


class ConfiguredTimer(Timer):
    """A timer whose interval is a config setting (``key``, ``default`` seconds; never below
    ``minimum``, so a 0 cannot make it spin), read when the container starts: each container
    keeps its own pace, nothing is shared through module state."""

    def __init__(self, key: str, default: float, minimum: float = 0.2, **kwargs):
        self.key, self.default, self.minimum = key, default, minimum
        super().__init__(interval=default, **kwargs)

    def setup(self):
        self.interval = max(self.minimum, float(self.container.config.get(self.key, self.default)))


configured_timer = ConfiguredTimer.decorator


class ServiceBase:
    name = "base"

    db = Database()
    redis = Redis()
    metrics = Metrics()
    call_context = CallContext()
    broker = BrokerHealth()
    required = RequiredSettings()  # refuses to start without the settings this process uses

    @rpc
    def ping(self) -> dict:
        """Health of this replica and of what it depends on."""
        return self._health()

    def _health(self) -> dict:
        checks = {
            "database": check(lambda: self.db.execute(text("SELECT 1"))),
            "redis": check(self.redis.ping),
            "broker": self.broker.check(),
        }
        self.db.rollback()
        return {
            "service": self.name,
            "instance": INSTANCE,
            "ok": all(c["ok"] for c in checks.values()),
            "checks": checks,
        }

    @probe("GET", "/metrics")
    def prometheus_metrics(self, request):
        return exposition()

    @probe("GET", "/healthz")
    def healthz(self, request):
        return {"status": "ok", "service": self.name, "instance": INSTANCE}

    @probe("GET", "/readyz")
    def readyz(self, request):
        """This replica can work: its database, Redis and broker connection answer (the kubelet's
        readiness probe). Served outside the worker pool (shared.probes)."""
        health = self._health()
        return (200 if health["ok"] else 503), health
