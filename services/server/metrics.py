"""The server service's metrics: servers expiring soon, counted when Prometheus scrapes.

``mae_servers_expiring{within_days}`` for each reminder threshold of
``SERVER_EXPIRY_DAYS`` (and 0: already expired) — an index range count on
``expires_at``, so cheap.
"""
from __future__ import annotations

from datetime import timedelta

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from shared.metrics import register_database_gauges

THRESHOLDS: list[int] = [30, 7, 1]


def configure(days) -> None:
    """The reminder thresholds from config (``SERVER_EXPIRY_DAYS``)."""
    try:
        wanted = sorted({int(d) for d in (days or []) if int(d) > 0}, reverse=True)
    except (TypeError, ValueError):
        return
    if wanted:
        THRESHOLDS[:] = wanted


def _families(conn, now):
    from services.server.models import Server

    expiring = GaugeMetricFamily("mae_servers_expiring",
                                 "Servers whose expiry falls within the next N days "
                                 "(within_days=\"0\": already expired).", labels=["within_days"])
    for days in [0, *THRESHOLDS]:
        n = conn.execute(select(func.count()).select_from(Server)
                         .where(Server.expires_at.is_not(None),
                                Server.expires_at < now + timedelta(days=days))).scalar() or 0
        expiring.add_metric([str(days)], n)
    return [expiring]


register_database_gauges("server-expiring", "server", _families, {"mae_servers_expiring": ("within_days",)})
