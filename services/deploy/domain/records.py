"""Deploy records and their targets in MySQL: creating them, feeding them cluster events, the clock.

Plain SQLAlchemy; the status rules themselves are in ``status``. Functions
that change state return what must be said after the commit (``Outbox``:
apply requests, log lines, finished records), so the caller publishes only
what was committed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, defer

from services.deploy.domain import manifests as objects
from services.deploy.domain import status
from services.deploy.models import LogLine, Record, Target, Version
from shared.errors import Conflict, Invalid, NotFound
from shared.paging import clamp_limit, page
from shared.timeutil import parse_rfc3339, rfc3339, utcnow

MAX_LINE = 8000


@dataclass
class Outbox:
    """What to publish once the transaction committed."""
    apply_requests: list[dict] = field(default_factory=list)
    lines: list[dict] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)

    def line(self, record_id: int, cluster: str, level: str, text: str, now: datetime | None = None) -> None:
        self.lines.append({"record_id": record_id, "cluster": cluster, "level": level,
                           "line": text[:MAX_LINE], "time": rfc3339(now or utcnow())})

    def extend(self, other: "Outbox") -> None:
        self.apply_requests += other.apply_requests
        self.lines += other.lines
        self.finished += other.finished


# -- views -----------------------------------------------------------------------------

def target_dict(target: Target) -> dict:
    return {"cluster": target.cluster, "env": target.env, "status": target.status, "reason": target.reason,
            "message": target.message, "action": target.action, "image": target.image,
            "replicas": {k: (target.replicas or {}).get(k, 0) for k in ("desired", "updated", "ready", "available")},
            "attempt": target.attempt, "finished_at": rfc3339(target.finished_at)}


def record_dict(record: Record, targets: list[Target] | None = None) -> dict:
    data = {"id": record.id, "action": record.action, "subject": record.subject, "app": record.app,
            "service": record.service, "version": record.version, "ingress": record.ingress,
            "rollback_of": record.rollback_of, "status": record.status, "reason": record.reason,
            "created_by": record.created_by, "created_at": rfc3339(record.created_at),
            "finished_at": rfc3339(record.finished_at)}
    if targets is not None:
        data["targets"] = [target_dict(t) for t in targets]
    return data


def get_record(db: Session, record_id, lock: bool = False) -> Record:
    record = None
    if isinstance(record_id, int) and not isinstance(record_id, bool):
        stmt = select(Record).where(Record.id == record_id)
        record = db.scalar(stmt.with_for_update() if lock else stmt)
    if record is None:
        raise NotFound(f"Deploy record {record_id} was not found.", {"record_id": record_id})
    return record


def targets_of(db: Session, record_id: int) -> list[Target]:
    return list(db.scalars(select(Target).where(Target.record_id == record_id).order_by(Target.id)))


def visible_record(db: Session, record_id) -> Record:
    """A record of a live application: one whose application was deleted is not found (it
    stays in the database for audit, never shown to a later application of that name)."""
    record = get_record(db, record_id)
    if record.deleted_app_id is not None:
        raise NotFound(f"Deploy record {record_id} was not found.", {"record_id": record_id})
    return record


def record_view(db: Session, record_id) -> dict:
    record = visible_record(db, record_id)
    return record_dict(record, targets_of(db, record.id))


def list_records(db: Session, app: str, service: str | None, version: str | None, limit, cursor) -> dict:
    stmt = select(Record).where(Record.app == app, Record.deleted_app_id.is_(None))
    if service:
        stmt = stmt.where(Record.service == service)
    if version:
        stmt = stmt.where(Record.version == version)
    result = page(db, stmt, Record.id, limit, cursor, lambda r: r, descending=True)
    ids = [r.id for r in result["items"]]
    by_record: dict[int, list[Target]] = {}
    if ids:
        # Without the manifests (a listing does not show them): decoding every target's
        # manifests was most of a listing's CPU.
        for t in db.scalars(select(Target).where(Target.record_id.in_(ids)).order_by(Target.id)
                            .options(defer(Target.manifests))):
            by_record.setdefault(t.record_id, []).append(t)
    result["items"] = [record_dict(r, by_record.get(r.id, [])) for r in result["items"]]
    return result


def logs(db: Session, record_id, after, limit) -> dict:
    visible_record(db, record_id)
    try:
        after = int(after or 0)
    except (TypeError, ValueError):
        raise Invalid("'after' must be a seq number from an earlier answer.", {"field": "after"})
    limit = clamp_limit(limit or 200) if limit else 1000
    rows = list(db.scalars(select(LogLine).where(LogLine.record_id == record_id, LogLine.id > after)
                           .order_by(LogLine.id).limit(limit)))
    return {"items": [{"seq": r.id, "time": rfc3339(r.time), "cluster": r.cluster, "level": r.level,
                       "line": r.line} for r in rows],
            "next_after": rows[-1].id if rows else after}


def version_status(db: Session, app: str, service: str) -> dict[str, list[dict]]:
    """Per version, its latest target on each cluster: what runs where now."""
    latest = (select(func.max(Target.id)).join(Record, Record.id == Target.record_id)
              .where(Record.app == app, Record.service == service, Record.subject == "version",
                     Record.deleted_app_id.is_(None))
              .group_by(Record.version, Target.cluster))
    rows = db.execute(select(Record.version, Record.id, Record.action, Target)
                      .join(Target, Target.record_id == Record.id).where(Target.id.in_(latest))
                      .order_by(Target.cluster))
    out: dict[str, list[dict]] = {}
    for version, record_id, action, target in rows:
        out.setdefault(version, []).append({**target_dict(target), "record_id": record_id, "last_action": action})
    return out


def clusters_of_version(db: Session, app: str, service: str, version: str) -> list[dict]:
    """Clusters where the version may run: every cluster an apply of it was sent to."""
    rows = db.execute(select(Target.cluster, Target.env).join(Record, Record.id == Target.record_id)
                      .where(Record.app == app, Record.service == service, Record.version == version,
                             Record.deleted_app_id.is_(None),
                             Target.action == "apply", Target.status != "pending")
                      .group_by(Target.cluster, Target.env).order_by(Target.cluster))
    return [{"name": c, "env": e} for c, e in rows]


# -- creating records ---------------------------------------------------------------

def _check_clusters(clusters) -> list[dict]:
    if not isinstance(clusters, list) or not clusters:
        raise Invalid("There is no cluster to deploy to.", {"field": "clusters"})
    seen = set()
    for c in clusters:
        if c["name"] in seen:
            raise Invalid(f"Cluster {c['name']!r} is named twice.", {"field": "clusters"})
        seen.add(c["name"])
    return clusters


def _supersede_older(db: Session, record: Record, clusters: list[str], namespace: str, object_name: str,
                     now: datetime, outbox: Outbox) -> None:
    """A newer action on the same object and cluster replaces older unfinished ones there."""
    older = list(db.scalars(select(Target).where(
        Target.cluster.in_(clusters), Target.namespace == namespace, Target.object_name == object_name,
        Target.status.in_(status.UNFINISHED), Target.record_id < record.id).order_by(Target.id).with_for_update()))
    for target in older:
        for level, text in status.supersede(target, record.id, now):
            outbox.line(target.record_id, target.cluster, level, text, now)
    db.flush()
    for record_id in sorted({t.record_id for t in older}):
        outbox.extend(settle(db, record_id, now))


def create_record(db: Session, *, app: str, action: str, subject: str, clusters: list[dict], actor: str,
                  render, object_name: str, service: str | None = None, version: str | None = None,
                  ingress: str | None = None, rollback_of: int | None = None,
                  target_action: str = "apply", intro: str = "") -> tuple[Record, Outbox]:
    """A record with one pending target per cluster. ``render(record_id, cluster)`` gives the
    exact manifests for that target (already checked); they are stored as they will be applied."""
    clusters = _check_clusters(clusters)
    now = utcnow()
    record = Record(app=app, action=action, subject=subject, service=service, version=version, ingress=ingress,
                    rollback_of=rollback_of, status=status.PENDING, created_by=actor, created_at=now)
    db.add(record)
    db.flush()
    outbox = Outbox()
    outbox.line(record.id, "", "info", intro or f"{action} requested by {actor}", now)
    for cluster in clusters:
        manifests = render(record.id, cluster["name"])
        deployment = objects.deployment_of(manifests)
        image = None
        deadline = status.DEFAULT_DEADLINE
        if deployment is not None and target_action == "apply":
            containers = deployment["spec"]["template"]["spec"]["containers"]
            image = containers[0].get("image")
            deadline = int(deployment["spec"].get("progressDeadlineSeconds") or status.DEFAULT_DEADLINE)
        db.add(Target(record_id=record.id, cluster=cluster["name"], env=cluster.get("env") or "",
                      namespace=app, object_name=object_name, action=target_action,
                      has_deployment=deployment is not None and target_action == "apply",
                      image=image, manifests=manifests, status=status.PENDING, replicas={},
                      progress_deadline_seconds=deadline, attempt=0))
    db.flush()
    _supersede_older(db, record, [c["name"] for c in clusters], app, object_name, now, outbox)
    # The apply requests are staged in the service's outbox in this same transaction,
    # so once it commits they will be sent: the targets are applying from here on.
    for target in targets_of(db, record.id):
        target.attempt = 1
        target.requested_at = now
        for level, text in status.requested(target, now):
            outbox.line(record.id, target.cluster, level, text, now)
        outbox.apply_requests.append(apply_request(target))
    db.flush()
    outbox.extend(settle(db, record.id, now))
    return record, outbox


def version_manifests(version: Version, rendered: list[dict], record_id: int) -> list[dict]:
    return objects.stamp_record(rendered, record_id)


def rollback_source(db: Session, record_id) -> tuple[Record, list[Target]]:
    record = visible_record(db, record_id)
    if record.action == "delete":
        raise Conflict("A delete cannot be rolled back; deploy the version again instead.",
                       {"record_id": record.id})
    if record.status != status.SUCCEEDED:
        raise Conflict(f"Only a record that succeeded can be rolled back to; record {record.id} is "
                       f"{record.status}.", {"record_id": record.id, "status": record.status})
    return record, targets_of(db, record.id)


# -- apply requests -------------------------------------------------------------------

def apply_request(target: Target) -> dict:
    """The ``deploy.apply_requested`` payload for this target's current attempt (docs/contracts.md)."""
    return {"request_id": f"{target.record_id}:{target.cluster}:{target.attempt}",
            "record_id": target.record_id, "cluster": target.cluster, "namespace": target.namespace,
            "action": target.action, "manifests": target.manifests}


# -- cluster events ------------------------------------------------------------------

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


def ingest(db: Session, events: list[dict], now: datetime | None = None) -> Outbox:
    """Apply results and status reports, in arrival order, in one transaction.

    Set-based: the targets the whole batch may touch are read (and locked) in a few
    statements, each report is judged in memory against its target
    (``status.report``: latest wins, duplicates and stale ones change nothing), the
    changed rows are flushed together and the touched records settled together.
    """
    now = now or utcnow()
    outbox = Outbox()
    items = flatten(events)
    results = [d for k, d in items if k == "apply_result"]
    reports = [d for k, d in items if k == "resource_status"]
    if not items:
        return outbox
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
            if target is None:
                continue
            before = (target.status, target.applied_generation)
            lines = status.apply_result(target, data, now)
            for level, text in lines:
                outbox.line(target.record_id, target.cluster, level, text, now)
            if lines or before != (target.status, target.applied_generation):
                touched.add(target.record_id)
        else:
            for target in by_object.get(_report_key(data), ()):
                before = (target.status, target.seen_version)
                lines = status.report(target, data, now)
                for level, text in lines:
                    outbox.line(target.record_id, target.cluster, level, text, now)
                if lines or before != (target.status, target.seen_version):
                    touched.add(target.record_id)
    db.flush()
    outbox.extend(settle_many(db, touched, now))
    return outbox


def settle_many(db: Session, record_ids, now: datetime) -> Outbox:
    """``settle`` for many records in two statements (records locked in id order)."""
    outbox = Outbox()
    ids = sorted(set(record_ids))
    if not ids:
        return outbox
    records = list(db.scalars(select(Record).where(Record.id.in_(ids)).order_by(Record.id).with_for_update()))
    targets: dict[int, list[Target]] = {}
    for t in db.scalars(select(Target).where(Target.record_id.in_(ids)).order_by(Target.id)
                        .options(defer(Target.manifests))):
        targets.setdefault(t.record_id, []).append(t)
    for record in records:
        outbox.extend(_settle(record, targets.get(record.id, []), now))
    db.flush()
    return outbox


def settle(db: Session, record_id: int, now: datetime) -> Outbox:
    """Recompute the record's status from its targets; finish it once all are final."""
    record = db.scalar(select(Record).where(Record.id == record_id).with_for_update())
    if record is None:
        return Outbox()
    outbox = _settle(record, targets_of(db, record_id), now)
    db.flush()
    return outbox


def _settle(record: Record, targets: list[Target], now: datetime) -> Outbox:
    outbox = Outbox()
    statuses = [t.status for t in targets]
    new = status.record_status(statuses)
    if new != record.status:
        record.status = new
        failed = [t for t in targets if t.status == status.FAILED]
        record.reason = f"{failed[0].cluster}: {failed[0].reason}" if failed else None
    if record.finished_at is None and status.record_finished(statuses):
        record.finished_at = now
        record.status = new
        outbox.line(record.id, "", "error" if new == status.FAILED else "info", f"record {new}", now)
        if new in (status.SUCCEEDED, status.FAILED):  # superseded: nobody is told
            outbox.finished.append(record.id)
    return outbox


def finished_event(db: Session, record_id: int) -> tuple[str, dict]:
    """(``succeeded``|``failed``, the data docs/contracts.md gives deploy.succeeded/failed)."""
    record, kind, data = finished_events(db, [record_id])[0]
    return kind, data


def finished_events(db: Session, record_ids: list[int]) -> list[tuple[Record, str, dict]]:
    """``finished_event`` for many records: (record, kind, data) each, in the order given.

    Two statements for any number (a batch of reports can finish a hundred records):
    the records come from the session when it holds them (``settle_many`` just locked
    them), their targets from one SELECT."""
    ids = list(record_ids)
    if not ids:
        return []
    records = {}
    for record_id in ids:
        record = db.get(Record, record_id) if isinstance(record_id, int) else None
        if record is None:
            raise NotFound(f"Deploy record {record_id} was not found.", {"record_id": record_id})
        records[record_id] = record
    targets: dict[int, list[Target]] = {}
    for t in db.scalars(select(Target).where(Target.record_id.in_(sorted(set(ids)))).order_by(Target.id)
                        .options(defer(Target.manifests))):
        targets.setdefault(t.record_id, []).append(t)
    out = []
    for record_id in ids:
        record = records[record_id]
        out.append((record, record.status, {
            "record_id": record.id, "app": record.app, "service": record.service, "version": record.version,
            "ingress": record.ingress, "action": record.action, "status": record.status, "reason": record.reason,
            "targets": [{"cluster": t.cluster, "env": t.env, "status": t.status, "reason": t.reason,
                         "message": t.message} for t in targets.get(record_id, [])],
            "created_by": record.created_by}))
    return out


# -- the clock -----------------------------------------------------------------------------

def sweep(db: Session, now: datetime, apply_timeout: float, max_attempts: int,
          deadline_grace: float, refused_hold: float = status.DEFAULT_REFUSED_SECONDS) -> Outbox:
    """Level-triggered repairs: apply requests nobody answered, rollouts that stalled,
    rollouts whose pods the cluster has refused for ``refused_hold`` seconds."""
    outbox = Outbox()
    touched: set[int] = set()
    overdue_before = now - timedelta(seconds=apply_timeout)
    for target in db.scalars(select(Target).where(
            Target.status == status.APPLYING, Target.requested_at < overdue_before)
            .order_by(Target.id).with_for_update(skip_locked=True)):
        if target.attempt >= max_attempts:
            for level, text in status.give_up(target, target.attempt, now):
                outbox.line(target.record_id, target.cluster, level, text, now)
            touched.add(target.record_id)
            continue
        target.attempt += 1
        target.requested_at = now
        outbox.line(target.record_id, target.cluster, "warning",
                    f"no answer from the cluster service within {apply_timeout:g} s; asking again "
                    f"(attempt {target.attempt})", now)
        outbox.apply_requests.append(apply_request(target))
    unfinished = (Target.status.in_((status.APPLIED, status.PROGRESSING)),)
    clocks = [  # (which targets may be due, the rule that decides)
        (select(Target).where(*unfinished, Target.has_deployment.is_(True),
                              Target.last_progress_at < now - timedelta(seconds=deadline_grace)),
         lambda target: status.deadline_passed(target, now, deadline_grace)),
        (select(Target).where(*unfinished, Target.refused_since < now - timedelta(seconds=refused_hold)),
         lambda target: status.refused_too_long(target, now, refused_hold)),
    ]
    for query, rule in clocks:
        for target in db.scalars(query.order_by(Target.id).with_for_update(skip_locked=True)):
            lines = rule(target)
            for level, text in lines:
                outbox.line(target.record_id, target.cluster, level, text, now)
            if lines:
                touched.add(target.record_id)
    db.flush()
    for record_id in sorted(touched):
        outbox.extend(settle(db, record_id, now))
    return outbox


# -- log lines -------------------------------------------------------------------------

LOG_INSERT = ("INSERT IGNORE INTO deploy_log_lines (line_id, record_id, time, cluster, level, line) "
              "VALUES (%s, %s, %s, %s, %s, %s)")


def store_log_lines(conn, rows: list[tuple]) -> None:
    """Insert ``rows`` (``log_rows``) so that each record's lines commit in ``seq`` order.

    A follower pages a record's log with ``?after=<seq>``, and seq is the row's
    auto-increment id. Two replicas storing lines of one record at once could commit
    the higher ids first: a follower that read them moved its cursor past the lower
    ids still being committed, and never saw those lines. Locking the records' rows
    (in id order, like every other transaction that locks them) before inserting
    makes the transactions that add lines to one record take their ids one after
    another, each after the previous one committed."""
    ids = sorted({row[1] for row in rows})
    conn.exec_driver_sql(f"SELECT id FROM deploy_records WHERE id IN ({', '.join(['%s'] * len(ids))}) "
                         "ORDER BY id FOR UPDATE", tuple(ids))
    conn.exec_driver_sql(LOG_INSERT, rows)


def log_rows(events: list[dict]) -> list[tuple]:
    """Rows for ``LOG_INSERT`` from ``cluster.log``/``deploy.log`` events (one line, or ``lines``).

    A line's identity is its ``line_id`` when it carries one (the cluster service's lines
    keep theirs whether they arrive merged or as staged), else ``<event_id>:<index>``."""
    rows = []
    for event in events:
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            continue
        data, event_id = event["data"], str(event.get("event_id") or "")[:64]
        if not event_id:
            continue
        lines = data.get("lines") if isinstance(data.get("lines"), list) else [data]
        for i, item in enumerate(lines):
            if not isinstance(item, dict) or not isinstance(item.get("record_id"), int):
                continue
            try:
                when = parse_rfc3339(item["time"]) if item.get("time") else utcnow()
            except (ValueError, TypeError, AttributeError):
                when = utcnow()
            level = item.get("level") if item.get("level") in ("info", "warning", "error") else "info"
            line_id = item.get("line_id")
            if not isinstance(line_id, str) or not line_id or len(line_id) > 80:
                line_id = event_id if len(lines) == 1 and "lines" not in data else f"{event_id}:{i}"
            rows.append((line_id, item["record_id"], when, str(item.get("cluster") or "")[:63], level,
                         str(item.get("line") or "")[:MAX_LINE]))
    return rows
