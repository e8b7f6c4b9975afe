"""The transactional outbox: an event is stored in the same transaction as the
work that caused it, so it can be late but never lost.

A transactional worker's ``EventPublisher.publish`` adds a row to its service's
``<service>_outbox`` table; the row commits (or rolls back) with the work. Right
after the commit the worker publishes the event and deletes the row. If the
process dies in between, a relay green thread in every replica picks up rows
older than a few seconds (``FOR UPDATE SKIP LOCKED``, so replicas never take the
same row) and publishes them. An event may therefore arrive twice — consumers
are idempotent by ``event_id`` — but never zero times.

Events are published with confirms and ``mandatory`` (``shared/events.py``): one the
broker returns because no queue is bound for it yet stays here, and the relay tries it
again ``UNROUTABLE_PAUSE`` later, while the rows behind it go on; a broker that fails
stops the round (what was sent is still cleared), and the next round goes on from there.

A row also keeps the trace context (``traceparent``) of the span that staged the
event, when tracing is on, so that the relay's late publish continues that trace.

The tables are declared here, one per service, on a metadata of their own, so
adding the outbox did not touch any service's models; each service still owns
its ``<service>_outbox``.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from nameko.amqp.publish import UndeliverableMessage
from sqlalchemy import JSON, BigInteger, String, delete, select, tuple_
from sqlalchemy.dialects.mysql import DATETIME
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from shared.timeutil import utcnow

log = logging.getLogger(__name__)

SERVICES = ("auth", "org", "deploy", "cluster", "server", "notify")

# Rows younger than this are left to the worker that wrote them.
RELAY_AFTER = timedelta(seconds=5)
RELAY_BATCH = 200
# An event type no queue is bound for is tried again this much later (seconds).
UNROUTABLE_PAUSE = 10.0
_unroutable: dict[tuple[str, str, str], float] = {}  # (service, source, event_type) -> retry after


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
    """Publish stale rows with ``send(source, event_type, body, trace)``; returns how many went.

    A row the broker returns (``UndeliverableMessage``: no queue for its type) stays, and
    its type is left alone for ``UNROUTABLE_PAUSE``; any other failure ends the round after
    the rows sent so far are cleared, and is raised."""
    from shared.queues import UNROUTABLE

    model = model_for(service)
    now = time.monotonic()
    paused = [key[1:] for key, until in list(_unroutable.items()) if key[0] == service and until > now]
    for key in [k for k, until in _unroutable.items() if until <= now]:
        _unroutable.pop(key, None)
    query = select(model).where(model.created_at < utcnow() - RELAY_AFTER)
    if paused:
        query = query.where(tuple_(model.source, model.event_type).not_in(paused))
    sent, failure = 0, None
    with Session(engine) as session:
        rows = list(session.scalars(query.order_by(model.id).limit(RELAY_BATCH).with_for_update(skip_locked=True)))
        for row in rows:
            if (service, row.source, row.event_type) in _unroutable:
                continue
            try:
                send(row.source, row.event_type, row.body, row.trace)
            except UndeliverableMessage as exc:
                _unroutable[(service, row.source, row.event_type)] = now + UNROUTABLE_PAUSE
                UNROUTABLE.labels(service, f"{row.source}.{row.event_type}").inc()
                log.warning("no queue is bound for %s.%s yet; it stays in the outbox: %s",
                            row.source, row.event_type, exc, extra={"service": service})
                continue
            except Exception as exc:  # the broker is away: clear what went, the rest waits
                failure = exc
                break
            session.delete(row)
            sent += 1
        session.commit()
    if sent:
        log.warning("relayed %d event(s) left in the outbox", sent, extra={"service": service})
    if failure is not None:
        raise failure
    return sent
