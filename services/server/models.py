"""Tables owned by the server service. No other service reads them."""
from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import (JSON, Date, DateTime, Float, ForeignKey, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.processed_events import processed_events_model


def utcnow() -> datetime:
    """Naive UTC: MariaDB DATETIME has no zone, every column here is UTC."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


ProcessedEvent = processed_events_model(Base, "server")


class CloudAccount(Base):
    __tablename__ = "server_cloud_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    provider: Mapped[str] = mapped_column(String(32))
    access_key_id: Mapped[str] = mapped_column(String(128))
    # shared.secretbox token, context f"cloud-account:{id}:secret"; never leaves the service.
    access_key_secret: Mapped[str] = mapped_column(Text)
    regions: Mapped[list] = mapped_column(JSON)
    last_sync_status: Mapped[str] = mapped_column(String(16), default="never")
    last_sync_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_sync_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Scheduled import (domain/schedule.py): every ``sync_every_hours`` (None: off). A
    # replica claims a period by moving ``next_sync_at`` on, in one conditional UPDATE.
    sync_every_hours: Mapped[int | None] = mapped_column(Integer, nullable=True)
    next_sync_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Server(Base):
    __tablename__ = "server_servers"
    # An instance id names one cloud machine: a second sync finds the row again.
    __table_args__ = (UniqueConstraint("provider", "instance_id", name="uq_server_instance"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    ip: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(32), default="manual")
    region: Mapped[str | None] = mapped_column(String(64), nullable=True)
    instance_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    cloud_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("server_cloud_accounts.id", ondelete="SET NULL"), nullable=True)
    cpu: Mapped[int | None] = mapped_column(Integer, nullable=True)
    memory_gb: Mapped[float | None] = mapped_column(Float, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    cloud_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class ExpiryReminder(Base):
    """One row per reminder sent. The unique key is what makes several replicas
    scanning at once send one reminder per server per day."""

    __tablename__ = "server_expiry_reminders"
    __table_args__ = (UniqueConstraint("server_id", "day", name="uq_reminder_server_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("server_servers.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    threshold: Mapped[int] = mapped_column(Integer)
    days_left: Mapped[int] = mapped_column(Integer)
    # The expiry this reminder was about: a renewed server starts its reminders afresh.
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    event_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
