"""The sweep: what time alone decides about targets nobody sent news of."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.deploy.domain import status
from services.deploy.domain.records.creation import apply_request
from services.deploy.domain.records.pending import PendingEvents
from services.deploy.domain.records.settling import settle
from services.deploy.models import Target


def sweep(db: Session, now: datetime, apply_timeout: float, max_attempts: int,
          deadline_grace: float, refused_hold: float = status.DEFAULT_REFUSED_SECONDS) -> PendingEvents:
    """Level-triggered repairs: apply requests nobody answered, rollouts that stalled,
    rollouts whose pods the cluster has refused for ``refused_hold`` seconds."""
    pending = PendingEvents()
    touched: set[int] = set()
    overdue_before = now - timedelta(seconds=apply_timeout)
    for target in db.scalars(select(Target).where(
            Target.status == status.APPLYING, Target.requested_at < overdue_before)
            .order_by(Target.id).with_for_update(skip_locked=True)):
        if target.attempt >= max_attempts:
            for level, text in status.give_up(target, target.attempt, now):
                pending.line(target.record_id, target.cluster, level, text, now)
            touched.add(target.record_id)
            continue
        target.attempt += 1
        target.requested_at = now
        pending.line(target.record_id, target.cluster, "warning",
                     f"no answer from the cluster service within {apply_timeout:g} s; asking again "
                     f"(attempt {target.attempt})", now)
        pending.apply_requests.append(apply_request(target))
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
                pending.line(target.record_id, target.cluster, level, text, now)
            if lines:
                touched.add(target.record_id)
    db.flush()
    for record_id in sorted(touched):
        pending.extend(settle(db, record_id, now))
    return pending
