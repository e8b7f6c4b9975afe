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


def unpublished(db: Session, limit: int = 500) -> list[ResourceReport]:
    return list(db.scalars(select(ResourceReport).where(ResourceReport.published.is_(False))
                           .order_by(ResourceReport.id).limit(limit)))


def latest(db: Session, cluster: str, namespace: str | None = None) -> list[dict]:
    stmt = select(ResourceReport).where(ResourceReport.cluster == cluster)
    if namespace:
        stmt = stmt.where(ResourceReport.namespace == namespace)
    return [status_event(cluster, r.report) for r in db.scalars(stmt.order_by(ResourceReport.id))]
