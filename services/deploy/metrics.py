"""The deploy service's metrics: deploys by outcome and duration, targets by state.

Targets are counted from the database when Prometheus scrapes (the unfinished
states only, through the (status, updated_at) index: cheap however many
finished targets the table holds); a finished record is counted once, when the
transaction that finished it is about to commit.
"""
from __future__ import annotations

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from shared.metrics import register_database_gauges

DEPLOYS_FINISHED = Counter(
    "mae_deploys_finished_total",
    "Deploy records (deploy, rollback, delete) that finished, by action and outcome.",
    ["action", "outcome"],
)
DEPLOY_DURATION = Histogram(
    "mae_deploy_duration_seconds",
    "From a record's creation to its end (every target applied and rolled out, or failed).",
    ["action", "outcome"],
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)

UNFINISHED = ("pending", "applying", "applied", "progressing")


def record_finished(record, now) -> None:
    outcome = record.status or "unknown"
    DEPLOYS_FINISHED.labels(record.action, outcome).inc()
    if record.created_at is not None:
        DEPLOY_DURATION.labels(record.action, outcome).observe(max(0.0, (now - record.created_at).total_seconds()))


def _target_families(conn, now):
    from services.deploy.models import Target

    count = GaugeMetricFamily("mae_deploy_targets",
                              "Deploy targets in each unfinished state now (one per record and cluster).",
                              labels=["state"])
    oldest = GaugeMetricFamily("mae_deploy_target_oldest_seconds",
                               "Seconds since the least recently moved target in each unfinished state "
                               "last changed (0 when there is none): a stuck rollout grows it.",
                               labels=["state"])
    rows = {state: (n, first) for state, n, first in conn.execute(
        select(Target.status, func.count(), func.min(Target.updated_at))
        .where(Target.status.in_(UNFINISHED)).group_by(Target.status))}
    for state in UNFINISHED:
        n, first = rows.get(state, (0, None))
        count.add_metric([state], n)
        oldest.add_metric([state], max(0.0, (now - first).total_seconds()) if first else 0.0)
    return [count, oldest]


register_database_gauges("deploy-targets", "deploy", _target_families,
                         {"mae_deploy_targets": ("state",), "mae_deploy_target_oldest_seconds": ("state",)})
