"""Cluster events into targets: apply results and status reports, a batch per transaction."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, defer

from services.deploy import schemas
from services.deploy.domain import status
from services.deploy.domain.records.pending import MAX_LINE, PendingEvents
from services.deploy.domain.records.settling import settle_many
from services.deploy.domain.refusals import warning_lines
from services.deploy.models import Target
from shared.timeutil import rfc3339, utcnow


def _report_key(data: dict):
    return (data.get("cluster"), data.get("namespace"), data.get("name"))


def flatten(events: list[dict]) -> list[tuple[str, dict]]:
    """``(kind, data)`` per apply result and per status report, in arrival order.

    A ``cluster.resource_status`` event carries one report, or many as
    ``{"cluster", "reports": [...]}`` (docs/contracts.md); either way each report
    counts on its own, in the order it was sent."""
    out: list[tuple[str, dict]] = []
    for event in events:
        data = event.get("data") if isinstance(event, dict) else None
        if not isinstance(data, dict):
            continue  # not an envelope: nothing to learn from it
        kind = str(event.get("type", ""))
        if kind.endswith("apply_result"):
            if isinstance(data.get("record_id"), int):
                out.append(("apply_result", data))
        elif kind.endswith("resource_status"):
            items = data.get("reports") if isinstance(data.get("reports"), list) else [data]
            for report in items:
                if not isinstance(report, dict) or report.get("kind", "Deployment") != "Deployment":
                    continue
                if report.get("cluster") is None and data.get("cluster") is not None:
                    report = {**report, "cluster": data["cluster"]}
                out.append(("resource_status", report))
    return out


# Keys per locking SELECT of targets: a batch of thousands of objects stays a few statements.
TARGET_KEYS_PER_QUERY = 500


def _targets_for(db: Session, results: list[dict], reports: list[dict]) -> list[Target]:
    """The targets these results and reports may change, locked in id order (two replicas
    handling overlapping batches wait for each other instead of deadlocking).

    IN lists that the unique (record_id, cluster) and the (cluster, namespace,
    object_name, status) indexes range over; the exact keys are picked by the caller."""
    record_ids = sorted({r["record_id"] for r in results})
    keys = sorted({_report_key(r) for r in reports}, key=str)
    found: dict[int, Target] = {}
    step = TARGET_KEYS_PER_QUERY
    for i in range(0, max(len(record_ids), len(keys)), step):
        ids, chunk = record_ids[i:i + step], keys[i:i + step]
        conditions = []
        if ids:
            conditions.append(Target.record_id.in_(ids))
        if chunk:
            conditions.append(and_(
                Target.cluster.in_({k[0] for k in chunk}), Target.namespace.in_({k[1] for k in chunk}),
                Target.object_name.in_({k[2] for k in chunk}), Target.status.in_(status.UNFINISHED)))
        for t in db.scalars(select(Target).where(or_(*conditions)).order_by(Target.id).with_for_update()
                            .options(defer(Target.manifests))):  # not needed to judge reports
            found[t.id] = t
    return [found[i] for i in sorted(found)]


def _judge(judge, target: Target, data: dict, now: datetime, pending: PendingEvents, touched: set[int]) -> None:
    """Apply one result or report to its target; a target whose status, applied generation
    or seen version moved (or that got a log line) is touched and settled with the batch."""
    before = (target.status, target.applied_generation, target.seen_version)
    lines = judge(target, data, now)
    for level, text in lines:
        pending.line(target.record_id, target.cluster, level, text, now)
    if lines or before != (target.status, target.applied_generation, target.seen_version):
        touched.add(target.record_id)


def _warnings(target: Target, report: dict, now: datetime, pending: PendingEvents) -> None:
    """The cluster's Warning events about the record's objects, into its log once each
    (the line id is the event's: the log stores an id once)."""
    for line_id, text in warning_lines(target.record_id, target.cluster, report):
        pending.lines.append({**schemas.log_line(target.record_id, target.cluster, "warning", text[:MAX_LINE],
                                                 rfc3339(now)), "line_id": line_id})


def ingest(db: Session, events: list[dict], now: datetime | None = None) -> PendingEvents:
    """Apply results and status reports, in arrival order, in one transaction.

    Set-based: the targets the whole batch may touch are read (and locked) in a few
    statements, each report is judged in memory against its target
    (``status.report``: latest wins, duplicates and stale ones change nothing), the
    changed rows are flushed together and the touched records settled together.
    """
    now = now or utcnow()
    pending = PendingEvents()
    items = flatten(events)
    results = [d for k, d in items if k == "apply_result"]
    reports = [d for k, d in items if k == "resource_status"]
    if not items:
        return pending
    wanted_pairs = {(r["record_id"], r.get("cluster")) for r in results}
    wanted_keys = {_report_key(r) for r in reports}
    by_record: dict[tuple, Target] = {}
    by_object: dict[tuple, list[Target]] = {}
    for t in _targets_for(db, results, reports):
        if (t.record_id, t.cluster) in wanted_pairs:
            by_record[(t.record_id, t.cluster)] = t
        key = (t.cluster, t.namespace, t.object_name)
        if key in wanted_keys and t.status in status.UNFINISHED:
            by_object.setdefault(key, []).append(t)
    touched: set[int] = set()
    for kind, data in items:
        if kind == "apply_result":
            target = by_record.get((data.get("record_id"), data.get("cluster")))
            if target is not None:
                _judge(status.apply_result, target, data, now, pending, touched)
        else:
            for target in by_object.get(_report_key(data), ()):
                _judge(status.report, target, data, now, pending, touched)
                if status.is_for(target, data):
                    _warnings(target, data, now, pending)
    db.flush()
    pending.extend(settle_many(db, touched, now))
    return pending
