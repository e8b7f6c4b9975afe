"""Tables owned by the org service. No other service reads them."""
from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from shared.idempotency import processed_events_model


class Base(DeclarativeBase):
    pass


ProcessedEvent = processed_events_model(Base, "org")
