"""Operator reports: keep the latest per object, drop duplicates and older ones.

"Newer" is a larger resourceVersion. On one cluster resourceVersions come from
one counter (etcd's revision; the sandbox's global version), and the operator
reports the largest it has seen for a Deployment and the objects summarised
into it, so a pod's change is newer than the Deployment's last write.
"""
from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.cluster.models import ResourceReport
from shared.timeutil import utcnow


def event_id(cluster: str, report: dict) -> str:
    """The same report always becomes the same event id: a republished one is a duplicate."""
    key = "/".join(str(report.get(k)) for k in ("namespace", "kind", "name", "uid", "resource_version"))
    return hashlib.sha256(f"{cluster}/{key}".encode()).hexdigest()[:32]


def status_event(cluster: str, report: dict) -> dict:
    return {**report, "cluster": cluster}


def ingest(db: Session, cluster: str, reports: list[dict]) -> list[ResourceReport]:
    """Store what is newer than what we have; returns the rows that changed."""
    accepted: dict[tuple, ResourceReport] = {}
    for report in sorted(reports, key=lambda r: int(r["resource_version"])):
        key = (report["namespace"], report["kind"], report["name"])
        rv = int(report["resource_version"])
        row = accepted.get(key) or db.scalar(select(ResourceReport).where(
            ResourceReport.cluster == cluster, ResourceReport.namespace == key[0],
            ResourceReport.kind == key[1], ResourceReport.name == key[2]).with_for_update())
        if row is None:
            row = ResourceReport(cluster=cluster, namespace=key[0], kind=key[1], name=key[2],
                                 uid=report["uid"], resource_version=rv, report=report,
                                 published=False, received_at=utcnow())
            db.add(row)
        elif rv > row.resource_version:
            row.uid, row.resource_version, row.report = report["uid"], rv, report
            row.published, row.received_at = False, utcnow()
        else:
            continue  # a duplicate or an older state: changes nothing
        accepted[key] = row
    db.flush()
    return list(accepted.values())


def mark_absent(db: Session, cluster: str, full_state: dict) -> list[ResourceReport]:
    """The operator listed every Deployment it can see (``full_state``): what we hold
    beyond that, reported before the list was taken, is gone from the cluster — it was
    deleted while the operator was not watching (down, restarting, or a 410 gap).

    Only rows older than the list's resourceVersion are touched: a Deployment created
    after the list is not in it, yet exists. The row becomes a ``deleted`` report at the
    list's version, so it is newer than what it replaces and is published like any other.
    """
    rv = int(full_state["resource_version"])
    present = {(d["namespace"], d["name"]) for d in full_state["deployments"]}
    changed = []
    rows = db.scalars(select(ResourceReport).where(
        ResourceReport.cluster == cluster, ResourceReport.kind == "Deployment",
        ResourceReport.resource_version < rv).with_for_update())
    for row in rows:
        if (row.namespace, row.name) in present or row.report.get("deleted"):
            continue
        row.report = {**row.report, "deleted": True, "resource_version": str(rv), "pods": [], "events": [],
                      "observed_at": utcnow().isoformat(timespec="milliseconds") + "Z"}
        row.resource_version, row.published, row.received_at = rv, False, utcnow()
        changed.append(row)
    db.flush()
    return changed


def unpublished(db: Session, limit: int = 500) -> list[ResourceReport]:
    return list(db.scalars(select(ResourceReport).where(ResourceReport.published.is_(False))
                           .order_by(ResourceReport.id).limit(limit)))


def latest(db: Session, cluster: str, namespace: str | None = None) -> list[dict]:
    stmt = select(ResourceReport).where(ResourceReport.cluster == cluster)
    if namespace:
        stmt = stmt.where(ResourceReport.namespace == namespace)
    return [status_event(cluster, r.report) for r in db.scalars(stmt.order_by(ResourceReport.id))]
