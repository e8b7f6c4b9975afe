"""What a deleted application leaves behind in the deploy service: nothing a later
application of the same name could see or use.

On ``org.application_deleted`` the app's services, versions (their env values and sealed
secret_env with them: the rows go),
ingresses (and their hosts, free for others again), templates, CI links (and their sealed
secrets) and builds are deleted; its
deploy records stay for audit, marked with the deleted app's id (``deleted_app_id``) and
never shown to, nor rolled back by, a later app of that name. Only rows made before the
deletion are touched: if the name was taken again before the event arrived (the broker
was down), the new app's rows are not.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from services.deploy.models import CILink, HostOwner, Ingress, Record, Service, Template, Version
from shared.timeutil import parse_rfc3339, utcnow


def forget_app(db: Session, name: str, app_id: int | None, before: datetime) -> dict:
    counts = {}
    for label, model, made in (("ci_links", CILink, CILink.updated_at), ("templates", Template, Template.created_at),
                               ("hosts", HostOwner, HostOwner.created_at),
                               ("ingresses", Ingress, Ingress.created_at), ("versions", Version, Version.created_at),
                               ("services", Service, Service.created_at)):
        counts[label] = db.execute(delete(model).where(model.app == name, made <= before)).rowcount
    counts["records_retired"] = db.execute(
        update(Record).where(Record.app == name, Record.deleted_app_id.is_(None), Record.created_at <= before)
        .values(deleted_app_id=app_id or 0)).rowcount
    return counts


def forget_deleted_app(db: Session, data: dict, occurred_at) -> dict:
    """``forget_app`` for an ``org.application_deleted`` event: rows made before it
    occurred (an event without a readable time: before now)."""
    try:
        before = parse_rfc3339(occurred_at or "")
    except (TypeError, ValueError):
        before = utcnow()
    return forget_app(db, data.get("name"), data.get("app_id"), before)
