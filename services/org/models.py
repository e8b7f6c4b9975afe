"""Tables owned by the org service. No other service reads them."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.processed_events import processed_events_model
from shared.timeutil import utcnow


class Base(DeclarativeBase):
    pass


ProcessedEvent = processed_events_model(Base, "org")


class Application(Base):
    """An application; its name is its Kubernetes namespace on every cluster."""

    __tablename__ = "org_applications"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    # an admin's overrides of the platform's defaults (domain/policy.py); None: none
    policy: Mapped[dict | None] = mapped_column(JSON, nullable=True, default=None)


class Member(Base):
    __tablename__ = "org_members"
    __table_args__ = (UniqueConstraint("app_id", "user_id", name="uq_member_app_user"),
                      Index("ix_members_user_app", "user_id", "app_id"))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    app_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("org_applications.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigInteger)
    username: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
