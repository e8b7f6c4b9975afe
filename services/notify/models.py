"""Tables owned by the notify service. No other service reads them."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.processed_events import processed_events_model


def utcnow() -> datetime:
    """Naive UTC: MariaDB DATETIME has no zone, every column here is UTC."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


ProcessedEvent = processed_events_model(Base, "notify")


class Channel(Base):
    """Where an application's (or, with ``app`` NULL, the platform admins') notices go."""

    __tablename__ = "notify_channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app: Mapped[str | None] = mapped_column(String(63), nullable=True, index=True)
    name: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(16))
    # shared.secretbox token, context f"notify-channel:{id}:url": a bot's webhook URL is its
    # credential (DingTalk's access_token, Feishu's hook id). Plain only in rows written
    # before migration 0008, until the service seals them at start.
    url: Mapped[str] = mapped_column(Text)
    url_masked: Mapped[str | None] = mapped_column(Text, nullable=True)
    # shared.secretbox token, context f"notify-channel:{id}:secret"; never leaves the service.
    secret: Mapped[str | None] = mapped_column(Text, nullable=True)
    events: Mapped[list] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Delivery(Base):
    """One event to one channel. The unique key is the "never twice" guarantee:
    whichever replica inserts it first owns the sending."""

    __tablename__ = "notify_deliveries"
    __table_args__ = (
        UniqueConstraint("channel_id", "event_id", name="uq_delivery_channel_event"),
        Index("ix_delivery_app_id", "app", "id"),
        Index("ix_delivery_status_lease", "status", "lease_until"),
        Index("ix_delivery_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("notify_channels.id", ondelete="CASCADE"))
    app: Mapped[str | None] = mapped_column(String(63), nullable=True)
    event_id: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(64))        # public name, e.g. deploy.failed
    payload: Mapped[dict] = mapped_column(JSON)            # the event envelope, to render retries
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # While "sending", the replica that claimed it owns it until then; after
    # that a sweep may take it over (the owner died mid-way).
    lease_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
