"""The cluster service's metrics: operator reports per cluster, their age, cluster API calls.

The age of each cluster's last report and whether its API server answered the
last probe are read from the database when Prometheus scrapes (a few rows);
the report rate is counted at the intake, API calls in ``mke/client.py``.
Clusters are few and named by people: a bounded label.
"""
from __future__ import annotations

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import select

from shared.metrics import LATENCY_BUCKETS, register_database_gauges

OPERATOR_REPORTS = Counter(
    "mae_operator_reports_total",
    "Status report POSTs received from a cluster's operator (each carries a batch of object reports).",
    ["cluster"],
)
OPERATOR_REPORT_ITEMS = Counter(
    "mae_operator_report_items_total",
    "Object reports from operators, by outcome: accepted (newer), dropped (stale or duplicate), "
    "marked_deleted (absent from a full list).",
    ["cluster", "outcome"],
)
CLUSTER_API_CALLS = Histogram(
    "mae_cluster_api_duration_seconds",
    "Requests to a cluster's API server (each attempt), by cluster, HTTP method and outcome "
    "(status code, or Unreachable / Timeout / TLSError).",
    ["cluster", "method", "outcome"],
    buckets=LATENCY_BUCKETS,
)

NAMESPACE_DRIFT = Counter(
    "mae_namespace_drift_total",
    "App namespaces found changed on a cluster by hand and put back by the tend's healing, by what "
    "differed (namespace: deleted or its mark/labels; quota; limits).",
    ["cluster", "what"],
)


def namespace_drifted(cluster: str, what: list[str]) -> None:
    kinds = {"quota" if w == "quota" else "limits" if w == "limits" else "namespace" for w in what}
    for kind in kinds:
        NAMESPACE_DRIFT.labels(cluster, kind).inc()


def reports_ingested(cluster: str, answer: dict) -> None:
    OPERATOR_REPORTS.labels(cluster).inc()
    for outcome in ("accepted", "dropped", "marked_deleted"):
        if answer.get(outcome):
            OPERATOR_REPORT_ITEMS.labels(cluster, outcome).inc(answer[outcome])


def _cluster_families(conn, now):
    from services.cluster.models import Cluster

    age = GaugeMetricFamily("mae_operator_last_report_age_seconds",
                            "Seconds since the cluster's operator last reported (heartbeats included); "
                            "absent for a cluster that never reported.", labels=["cluster", "env"])
    reachable = GaugeMetricFamily("mae_cluster_reachable",
                                  "1 if the cluster's API server answered MAE's last probe.",
                                  labels=["cluster", "env"])
    for name, env, last, up in conn.execute(
            select(Cluster.name, Cluster.env, Cluster.last_report_at, Cluster.reachable)):
        if last is not None:
            age.add_metric([name, env], max(0.0, (now - last).total_seconds()))
        reachable.add_metric([name, env], 1 if up else 0)
    return [age, reachable]


register_database_gauges("cluster-clusters", "cluster", _cluster_families,
                         {"mae_operator_last_report_age_seconds": ("cluster", "env"),
                          "mae_cluster_reachable": ("cluster", "env")})
