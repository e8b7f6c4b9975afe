"""A record's status from its targets', and what its finish tells the other services."""
from __future__ import annotations

from services.deploy import schemas

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from services.deploy.domain import status
from services.deploy.domain.records.pending import PendingEvents
from services.deploy.domain.records.views import targets_of
from services.deploy.models import Record, Target
from shared.errors import NotFound


def settle_many(db: Session, record_ids, now: datetime) -> PendingEvents:
    """``settle`` for many records in two statements (records locked in id order)."""
    pending = PendingEvents()
    ids = sorted(set(record_ids))
    if not ids:
        return pending
    records = list(db.scalars(select(Record).where(Record.id.in_(ids)).order_by(Record.id).with_for_update()))
    targets: dict[int, list[Target]] = {}
    for t in db.scalars(select(Target).where(Target.record_id.in_(ids)).order_by(Target.id)
                        .options(defer(Target.manifests))):
        targets.setdefault(t.record_id, []).append(t)
    for record in records:
        pending.extend(_settle(record, targets.get(record.id, []), now))
    db.flush()
    return pending


def settle(db: Session, record_id: int, now: datetime) -> PendingEvents:
    """Recompute the record's status from its targets; finish it once all are final."""
    record = db.scalar(select(Record).where(Record.id == record_id).with_for_update())
    if record is None:
        return PendingEvents()
    pending = _settle(record, targets_of(db, record_id), now)
    db.flush()
    return pending


def _settle(record: Record, targets: list[Target], now: datetime) -> PendingEvents:
    pending = PendingEvents()
    statuses = [t.status for t in targets]
    new = status.record_status(statuses)
    if new != record.status:
        record.status = new
        failed = [t for t in targets if t.status == status.FAILED]
        record.reason = f"{failed[0].cluster}: {failed[0].reason}" if failed else None
    if record.finished_at is None and status.record_finished(statuses):
        record.finished_at = now
        record.status = new
        pending.line(record.id, "", "error" if new == status.FAILED else "info", f"record {new}", now)
        if new in (status.SUCCEEDED, status.FAILED):  # superseded: nobody is told
            pending.finished.append(record.id)
    return pending


def finished_events(db: Session, record_ids: list[int]) -> list[tuple[Record, str, dict]]:
    """(record, ``succeeded``|``failed``, the data docs/contracts.md gives deploy.succeeded/failed)
    for each record, in the order given.

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
        out.append((record, record.status, schemas.record_finished(
            record.id, record.app, record.service, record.version, record.ingress, record.action,
            record.status, record.reason,
            [schemas.target_outcome(t.cluster, t.env, t.status, t.reason, t.message)
             for t in targets.get(record_id, [])], record.created_by)))
    return out
