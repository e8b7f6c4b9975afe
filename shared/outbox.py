"""The transactional outbox: an event is stored in the same transaction as the
work that caused it, so it can be late but never lost.

A transactional worker's ``EventPublisher.publish`` adds a row to its service's
``<service>_outbox`` table; the row commits (or rolls back) with the work. Right
after the commit the worker publishes the event and deletes the row. If the
process dies in between, a relay green thread in every replica picks up rows
older than a few seconds (``FOR UPDATE SKIP LOCKED``, so replicas never take the
same row) and publishes them. An event may therefore arrive twice — consumers
are idempotent by ``event_id`` — but never zero times.

A row also keeps the trace context (``traceparent``) of the span that staged the
event, when tracing is on, so that the relay's late publish continues that trace.

The tables are declared here, one per service, on a metadata of their own, so
adding the outbox did not touch any service's models; each service still owns
its ``<service>_outbox``.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import JSON, BigInteger, String, delete, select
from sqlalchemy.dialects.mysql import DATETIME
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from shared.timeutil import utcnow

log = logging.getLogger(__name__)

SERVICES = ("auth", "org", "deploy", "cluster", "server", "notify")

# Rows younger than this are left to the worker that wrote them.
RELAY_AFTER = timedelta(seconds=5)
RELAY_BATCH = 200


class OutboxBase(DeclarativeBase):
    pass


def _model(service: str):
    return type(f"{service.capitalize()}Outbox", (OutboxBase,), {
        "__tablename__": f"{service}_outbox",
        "__annotations__": {"id": Mapped[int], "event_id": Mapped[str], "source": Mapped[str],
                            "event_type": Mapped[str], "body": Mapped[dict],
                            "trace": Mapped[dict | None], "created_at": Mapped[datetime]},
        "id": mapped_column(BigInteger, primary_key=True, autoincrement=True),
        "event_id": mapped_column(String(64), unique=True),
        "source": mapped_column(String(64)),
        "event_type": mapped_column(String(128)),
        "body": mapped_column(JSON),
        "trace": mapped_column(JSON, nullable=True),
        "created_at": mapped_column(DATETIME(fsp=6), default=utcnow, index=True),
    })


MODELS = {service: _model(service) for service in SERVICES}


def model_for(service: str):
    """The outbox of ``service``; services outside MAE's six (tests) share ``org``'s shape."""
    if service not in MODELS:
        MODELS[service] = _model(service)
    return MODELS[service]


def stage(session: Session, service: str, event: dict, trace: dict | None = None) -> None:
    """Add ``event`` to the open transaction (``trace``: its W3C trace context headers, if any)."""
    session.add(model_for(service)(event_id=event["event_id"], source=event["source"],
                                   event_type=event["type"].split(".", 1)[1], body=event,
                                   trace=trace or None))


def forget(engine, service: str, event_id: str) -> None:
    """The event went out: drop its row (a failure here only means a duplicate later)."""
    table = model_for(service).__table__
    with engine.begin() as conn:
        conn.execute(delete(table).where(table.c.event_id == event_id))


def forget_many(engine, service: str, event_ids: list[str]) -> None:
    """Several events went out: drop their rows in one statement (one commit)."""
    if not event_ids:
        return
    table = model_for(service).__table__
    with engine.begin() as conn:
        conn.execute(delete(table).where(table.c.event_id.in_(list(event_ids))))


def relay(engine, service: str, send) -> int:
    """Publish stale rows with ``send(source, event_type, body, trace)``; returns how many went."""
    model = model_for(service)
    with Session(engine) as session:
        rows = list(session.scalars(
            select(model).where(model.created_at < utcnow() - RELAY_AFTER)
            .order_by(model.id).limit(RELAY_BATCH).with_for_update(skip_locked=True)))
        for row in rows:
            send(row.source, row.event_type, row.body, row.trace)
            session.delete(row)
        session.commit()
    if rows:
        log.warning("relayed %d event(s) left in the outbox", len(rows), extra={"service": service})
    return len(rows)
