"""Gauges read from the database when Prometheus scrapes: the database pool of each
service this process runs (checked out, overflow, size) and its outbox backlog, and the
``register_database_gauges`` a service's own ``metrics.py`` uses.

``DatabaseGauges`` is how a gauge that counts rows is made cheap: the query
runs when Prometheus scrapes (not on every change), its answer is cached for a
few seconds, and a failing database makes the series disappear rather than the
scrape fail.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

ENGINES: dict[str, object] = {}


def register_engine(service: str, engine) -> None:
    """The database engine of ``service`` in this process (pool gauges, ``DatabaseGauges``)."""
    ENGINES[service] = engine


class _PoolCollector:
    def describe(self):
        return []

    def collect(self):
        checked_out = GaugeMetricFamily("mae_db_pool_checked_out",
                                        "Database connections in use by workers now.", labels=["service"])
        overflow = GaugeMetricFamily("mae_db_pool_overflow",
                                     "Connections open beyond the pool's size (negative: the pool is not full yet).",
                                     labels=["service"])
        size = GaugeMetricFamily("mae_db_pool_size", "The pool's configured size.", labels=["service"])
        for service, engine in list(ENGINES.items()):
            pool = engine.pool
            if not all(hasattr(pool, name) for name in ("checkedout", "overflow", "size")):
                continue
            checked_out.add_metric([service], pool.checkedout())
            overflow.add_metric([service], pool.overflow())
            size.add_metric([service], pool.size())
        return [checked_out, overflow, size]


class DatabaseGauges:
    """Gauges counted from ``service``'s database when Prometheus scrapes.

    ``families(conn, now)`` returns metric families; the answer is reused for
    ``ttl`` seconds (several scrapers, or a person refreshing ``/metrics``, cost
    one query), and an error leaves the families out of that scrape.
    """

    def __init__(self, service: str, families, ttl: float = 5.0):
        self.service, self.families, self.ttl = service, families, ttl
        self._cached: tuple[float, list] | None = None
        self._lock = threading.Lock()

    def describe(self):
        return []

    def collect(self):
        engine = ENGINES.get(self.service)
        if engine is None:
            return []
        now = time.monotonic()
        if self._cached and now - self._cached[0] < self.ttl:
            return self._cached[1]
        with self._lock:
            try:
                with engine.connect() as conn:
                    answer = list(self.families(conn, datetime.now(timezone.utc).replace(tzinfo=None)))
            except Exception as exc:  # the database is down: no series beats a failed scrape
                log.debug("scrape-time query failed: %s", exc, extra={"service": self.service})
                self._cached = None
                return []
            self._cached = (now, answer)
            return answer


_registered: set = set()

# Gauges made at scrape time, {name: label names}: they exist only while a database
# answers, so they are declared here for whoever checks names (tests/unit/test_monitoring.py).
SCRAPE_TIME_GAUGES: dict[str, tuple[str, ...]] = {
    "mae_db_pool_checked_out": ("service",), "mae_db_pool_overflow": ("service",),
    "mae_db_pool_size": ("service",),
    "mae_outbox_backlog": ("service",), "mae_outbox_oldest_seconds": ("service",),
}


def register_database_gauges(key: str, service: str, families, gauges: dict[str, tuple[str, ...]],
                             ttl: float = 5.0) -> None:
    """Register a ``DatabaseGauges`` once per process under ``key``; ``gauges`` declares
    the names and label names ``families`` makes."""
    SCRAPE_TIME_GAUGES.update(gauges)
    if key in _registered:
        return
    _registered.add(key)
    REGISTRY.register(DatabaseGauges(service, families, ttl))


def _outbox_families(service: str):
    def families(conn, now):
        from sqlalchemy import func, select

        from shared import outbox

        table = outbox.model_for(service).__table__
        capped = select(table.c.id).limit(10000).subquery()
        count = conn.execute(select(func.count()).select_from(capped)).scalar() or 0
        first = conn.execute(select(func.min(table.c.created_at))).scalar()
        backlog = GaugeMetricFamily("mae_outbox_backlog",
                                    "Events waiting in the service's outbox (capped at 10000).",
                                    labels=["service"])
        oldest = GaugeMetricFamily("mae_outbox_oldest_seconds",
                                   "Age of the oldest event waiting in the outbox (0 when empty).",
                                   labels=["service"])
        backlog.add_metric([service], count)
        oldest.add_metric([service], max(0.0, (now - first).total_seconds()) if first else 0.0)
        return [backlog, oldest]
    return families


class _OutboxCollector:
    """The outbox of every service whose engine this process has (one, outside tests)."""

    def __init__(self):
        self.per_service: dict[str, DatabaseGauges] = {}

    def describe(self):
        return []

    def collect(self):
        from shared import outbox

        merged: dict[str, GaugeMetricFamily] = {}
        for service in list(ENGINES):
            if service not in outbox.SERVICES:
                continue
            gauges = self.per_service.setdefault(service, DatabaseGauges(service, _outbox_families(service)))
            for family in gauges.collect():
                if family.name in merged:
                    merged[family.name].samples.extend(family.samples)
                else:
                    merged[family.name] = GaugeMetricFamily(family.name, family.documentation, labels=["service"])
                    merged[family.name].samples.extend(family.samples)
        return list(merged.values())


REGISTRY.register(_PoolCollector())
REGISTRY.register(_OutboxCollector())
