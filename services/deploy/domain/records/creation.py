"""Creating records: one pending target per cluster, older actions on the same object superseded,
the apply requests staged."""
from __future__ import annotations

from services.deploy import schemas

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.deploy.domain import manifests as objects
from services.deploy.domain import status
from services.deploy.domain.records.pending import PendingEvents
from services.deploy.domain.records.settling import settle
from services.deploy.domain.records.views import targets_of, visible_record
from services.deploy.models import Record, Target
from shared.errors import Conflict, Invalid
from shared.timeutil import utcnow


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
                     now: datetime, pending: PendingEvents) -> None:
    """A newer action on the same object and cluster replaces older unfinished ones there."""
    older = list(db.scalars(select(Target).where(
        Target.cluster.in_(clusters), Target.namespace == namespace, Target.object_name == object_name,
        Target.status.in_(status.UNFINISHED), Target.record_id < record.id).order_by(Target.id).with_for_update()))
    for target in older:
        for level, text in status.supersede(target, record.id, now):
            pending.line(target.record_id, target.cluster, level, text, now)
    db.flush()
    for record_id in sorted({t.record_id for t in older}):
        pending.extend(settle(db, record_id, now))


def create_record(db: Session, *, app: str, action: str, subject: str, clusters: list[dict], actor: str,
                  render, object_name: str, service: str | None = None, version: str | None = None,
                  ingress: str | None = None, rollback_of: int | None = None,
                  target_action: str = "apply", intro: str = "") -> tuple[Record, PendingEvents]:
    """A record with one pending target per cluster. ``render(record_id, cluster)`` gives the
    exact manifests for that target (already checked); they are stored as they will be applied."""
    clusters = _check_clusters(clusters)
    now = utcnow()
    record = Record(app=app, action=action, subject=subject, service=service, version=version, ingress=ingress,
                    rollback_of=rollback_of, status=status.PENDING, created_by=actor, created_at=now)
    db.add(record)
    db.flush()
    pending = PendingEvents()
    pending.line(record.id, "", "info", intro or f"{action} requested by {actor}", now)
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
    _supersede_older(db, record, [c["name"] for c in clusters], app, object_name, now, pending)
    # The apply requests are staged in the service's outbox in this same transaction,
    # so once it commits they will be sent: the targets are applying from here on.
    for target in targets_of(db, record.id):
        target.attempt = 1
        target.requested_at = now
        for level, text in status.requested(target, now):
            pending.line(record.id, target.cluster, level, text, now)
        pending.apply_requests.append(apply_request(target))
    db.flush()
    pending.extend(settle(db, record.id, now))
    return record, pending


def rollback_source(db: Session, record_id) -> tuple[Record, list[Target]]:
    record = visible_record(db, record_id)
    targets = targets_of(db, record.id)
    if any(t.action == "delete" for t in targets):
        raise Conflict(f"Record {record.id} removed objects ({record.action}); it cannot be rolled back to. "
                       f"Deploy the version (or route the service) again instead.", {"record_id": record.id})
    if record.status != status.SUCCEEDED:
        raise Conflict(f"Only a record that succeeded can be rolled back to; record {record.id} is "
                       f"{record.status}.", {"record_id": record.id, "status": record.status})
    if any(t.manifests is None for t in targets):  # trimmed by retention (services/deploy/retention.py)
        raise Conflict(f"Record {record.id} is too old to roll back to: its manifests were removed after "
                       f"the retention period. Deploy the version again instead.",
                       {"record_id": record.id, "reason": "manifests_trimmed"})
    return record, targets


def apply_request(target: Target) -> dict:
    """The ``deploy.apply_requested`` payload for this target's current attempt (docs/contracts.md)."""
    return schemas.apply_requested(target.record_id, target.cluster, target.attempt, target.namespace,
                                   target.action, target.manifests)
