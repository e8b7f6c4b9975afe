"""Exactly-once *effects* for at-least-once events.

Each service that handles events has a processed-events table of its own. A
handler records the event id in the same transaction as its work; a second
delivery finds the id and does nothing, and a handler that fails rolls the
record back with its work, so the retry runs again.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import DateTime, Index, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column


def processed_events_model(base, service: str):
    """Declare ``<service>_processed_events`` on the service's own declarative base."""
    return type(
        "ProcessedEvent",
        (base,),
        {
            "__tablename__": f"{service}_processed_events",
            "__annotations__": {"event_id": Mapped[str], "event_type": Mapped[str],
                                "processed_at": Mapped[datetime]},
            "event_id": mapped_column(String(64), primary_key=True),
            "event_type": mapped_column(String(128)),
            "processed_at": mapped_column(
                DateTime, default=lambda: datetime.now(timezone.utc).replace(tzinfo=None)),
            # retention deletes ids older than RETENTION_DAYS.processed_events (migrations 0028-0033)
            "__table_args__": (Index(f"ix_{service}_processed_events_at", "processed_at"),),
        },
    )


def first_delivery(session: Session, model, event: dict) -> bool:
    """True the first time this event id is seen; records it in the open transaction."""
    event_id = event["event_id"]
    if session.scalar(select(model.event_id).where(model.event_id == event_id)):
        return False
    session.add(model(event_id=event_id, event_type=event.get("type", "")))
    # Flush now: a concurrent replica inserting the same id fails here (duplicate
    # key), its transaction rolls back and the message is redelivered, then skipped.
    session.flush()
    return True
