"""Records and targets as the API shows them: one record, a listing, what runs where."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer

from services.deploy.models import Record, Target
from shared.errors import NotFound
from shared.paging import page
from shared.timeutil import rfc3339


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
        # Without the manifests: a listing does not show them, and decoding every
        # target's manifests would be most of a listing's CPU.
        for t in db.scalars(select(Target).where(Target.record_id.in_(ids)).order_by(Target.id)
                            .options(defer(Target.manifests))):
            by_record.setdefault(t.record_id, []).append(t)
    result["items"] = [record_dict(r, by_record.get(r.id, [])) for r in result["items"]]
    return result


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
                             Record.subject == "version", Record.deleted_app_id.is_(None),
                             Target.action == "apply", Target.status != "pending")
                      .group_by(Target.cluster, Target.env).order_by(Target.cluster))
    return [{"name": c, "env": e} for c, e in rows]
