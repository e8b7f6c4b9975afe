"""Operator reports: keep the latest per object, drop duplicates and older ones.

"Newer" is a larger resourceVersion. On one cluster resourceVersions come from
one counter (etcd's revision; the sandbox's global version), and the operator
reports the largest it has seen for a Deployment and the objects summarised
into it, so a pod's change is newer than the Deployment's last write.
"""
from __future__ import annotations

import hashlib
import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.cluster import schemas
from services.cluster.models import ResourceReport
from shared import reportorder
from shared.timeutil import utcnow


def event_id(cluster: str, report: dict) -> str:
    """The same report always becomes the same event id: a republished one is a duplicate."""
    key = "/".join([*(str(report.get(k)) for k in ("namespace", "kind", "name", "uid")), reportorder.key(report)])
    return hashlib.sha256(f"{cluster}/{key}".encode()).hexdigest()[:32]


def status_event(cluster: str, report: dict) -> dict:
    return {**report, "cluster": cluster}


# Reports per ``cluster.resource_status`` event: one intake's accepted reports travel
# together, in events of at most this many (a consumer's batch stays bounded).
REPORTS_PER_EVENT = 100


def batch_events(cluster: str, reports: list[dict]) -> list[tuple[str, dict]]:
    """``(event_id, data)`` of the ``cluster.resource_status`` events announcing ``reports``:
    ``{"cluster", "reports": [...]}`` (docs/contracts.md). The id is derived from the
    reports' own ids, so announcing the same reports again is the same event."""
    out = []
    for i in range(0, len(reports), REPORTS_PER_EVENT):
        chunk = reports[i:i + REPORTS_PER_EVENT]
        ids = "|".join(event_id(cluster, r) for r in chunk)
        out.append((hashlib.sha256(f"batch/{ids}".encode()).hexdigest()[:32],
                    schemas.resource_status(cluster, chunk)))
    return out


def _key(report: dict) -> tuple[str, str, str]:
    return report["namespace"], report["kind"], report["name"]


def stored_versions(db: Session, cluster: str, keys) -> dict[tuple, int]:
    """The stored resourceVersion of each of ``keys`` that has a row: one query.

    Narrowed by IN lists the unique index (cluster, namespace, kind, name) can range
    over, then filtered to the exact keys here. Written out with placeholders: SQLAlchemy
    compiling the expanding IN lists of every intake cost more than the query itself."""
    keys = set(keys)
    if not keys:
        return {}
    namespaces = sorted({k[0] for k in keys})
    kinds = sorted({k[1] for k in keys})
    names = sorted({k[2] for k in keys})
    sql = ("SELECT namespace, kind, name, version_key FROM cluster_reports WHERE cluster = %s"
           f" AND namespace IN ({', '.join(['%s'] * len(namespaces))})"
           f" AND kind IN ({', '.join(['%s'] * len(kinds))})"
           f" AND name IN ({', '.join(['%s'] * len(names))})")
    rows = db.connection().exec_driver_sql(sql, (cluster, *namespaces, *kinds, *names))
    return {(ns, kind, name): version for ns, kind, name, version in rows if (ns, kind, name) in keys}


def newest_per_object(reports: list[dict]) -> dict[tuple, dict]:
    """The newest report per object (later in ``reportorder``; of equal ones the first)."""
    newest: dict[tuple, dict] = {}
    order: dict[tuple, str] = {}
    for report in reports:
        key, at = _key(report), reportorder.key(report)
        if key not in newest or at > order[key]:
            newest[key], order[key] = report, at
    return newest


def ingest(db: Session, cluster: str, reports: list[dict]) -> list[dict]:
    """Store what is newer than what we have; returns the accepted reports (``ingest_many``)."""
    return ingest_many(db, cluster, [reports])[0]


def ingest_many(db: Session, cluster: str, batches: list[list[dict]]) -> list[list[dict]]:
    """Store what is newer than what we have, set-based, for several intakes at once;
    returns each intake's accepted reports, judged in order exactly as if each had
    been stored alone.

    Per intake, the newest report per object counts; it is accepted if newer than the
    stored version (read once for every object of every intake, with one SELECT) or
    than what an earlier intake of the batch just accepted. The winners are written
    with one ``INSERT … ON DUPLICATE KEY UPDATE`` whose update keeps the larger
    version, so no row can move backwards. Duplicates and older reports change
    nothing. The caller holds the cluster's row lock (one intake transaction per
    cluster at a time) and stages the announcement of the accepted reports in the
    same transaction, so the rows are written ``published``.
    """
    newest = [newest_per_object(batch) for batch in batches]
    current = stored_versions(db, cluster, {k for n in newest for k in n})
    winners: dict[tuple, dict] = {}
    out = []
    for batch in newest:
        accepted = []
        for k, report in batch.items():
            at = reportorder.key(report)
            if k not in current or at > current[k]:
                current[k], winners[k] = at, report
                accepted.append(report)
        out.append(accepted)
    if winners:
        upsert(db, cluster, list(winners.values()))
    return out


# One statement for any number of rows (the driver sends them as one multi-row INSERT);
# written out rather than built per call, which cost more than the statement itself.
# MariaDB evaluates the assignments left to right, each seeing the ones before: the
# order key goes last, so every IF compares with the stored one. "Newer" is the
# report order of shared/reportorder.py (fixed-width digits: string order is the order).
_NEWER = "VALUES(version_key) > version_key"
UPSERT = (
    "INSERT INTO cluster_reports (cluster, namespace, kind, name, uid, resource_version, report, published, "
    "received_at, version_key) VALUES (%s, %s, %s, %s, %s, %s, %s, 1, %s, %s) ON DUPLICATE KEY UPDATE "
    f"uid = IF({_NEWER}, VALUES(uid), uid), "
    f"report = IF({_NEWER}, VALUES(report), report), "
    f"published = IF({_NEWER}, 1, published), "
    f"received_at = IF({_NEWER}, VALUES(received_at), received_at), "
    f"resource_version = IF({_NEWER}, VALUES(resource_version), resource_version), "
    "version_key = GREATEST(version_key, VALUES(version_key))")


def upsert(db: Session, cluster: str, reports: list[dict]) -> None:
    """Write ``reports`` where they are newer than the stored row (never backwards)."""
    now = utcnow()
    rows = [(cluster, r["namespace"], r["kind"], r["name"], r["uid"], int(r["resource_version"]),
             json.dumps(r), now, reportorder.key(r))
            for r in sorted(reports, key=_key)]  # one key order for every intake: no lock-order cycles
    db.connection().exec_driver_sql(UPSERT, rows)


def mark_absent(db: Session, cluster: str, full_state: dict) -> list[dict]:
    """The operator listed every Deployment it can see (``full_state``): what we hold
    beyond that, reported before the list was taken, is gone from the cluster — it was
    deleted while the operator was not watching (down, restarting, or a 410 gap).

    Only rows older than the list's resourceVersion are touched: a Deployment created
    after the list is not in it, yet exists. The row becomes a ``deleted`` report at the
    list's version, so it is newer than what it replaces and is announced like any other
    (the caller stages the announcement in this transaction, hence ``published``).
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
        row.resource_version, row.published, row.received_at = rv, True, utcnow()
        row.version_key = reportorder.of_version(rv)
        changed.append(row.report)
    db.flush()
    return changed


def take_unpublished(db: Session, limit: int = 500) -> dict[str, list[dict]]:
    """Rows whose announcement never left (written before announcements went through the
    outbox), per cluster, marked published: the caller stages their events in this transaction."""
    rows = list(db.scalars(select(ResourceReport).where(ResourceReport.published.is_(False))
                           .order_by(ResourceReport.id).limit(limit).with_for_update(skip_locked=True)))
    out: dict[str, list[dict]] = {}
    for row in rows:
        row.published = True
        out.setdefault(row.cluster, []).append(row.report)
    db.flush()
    return out


def latest(db: Session, cluster: str, namespace: str | None = None) -> list[dict]:
    stmt = select(ResourceReport).where(ResourceReport.cluster == cluster)
    if namespace:
        stmt = stmt.where(ResourceReport.namespace == namespace)
    return [status_event(cluster, r.report) for r in db.scalars(stmt.order_by(ResourceReport.id))]
