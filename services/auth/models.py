"""Tables owned by the auth service. No other service reads them."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects.mysql import DATETIME
from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.processed_events import processed_events_model
from shared.timeutil import utcnow


BINARY = "utf8mb4_bin"


class Base(DeclarativeBase):
    pass


ProcessedEvent = processed_events_model(Base, "auth")


class User(Base):
    __tablename__ = "auth_users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # A label, not an identity (that is ``Identity``): compared exactly (binary collation),
    # and unique also once folded (``username_key``: case and accents folded away), so
    # ``Admin`` or ``ADMİN`` can never stand beside ``admin`` (services/auth/domain/usernames.py).
    username: Mapped[str] = mapped_column(String(64, collation=BINARY), unique=True)
    username_key: Mapped[str] = mapped_column(String(64, collation=BINARY), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Identity(Base):
    """A user's account at a login provider: who someone is (provider + the provider's
    subject id, compared byte for byte). A login finds its user through this row only."""

    __tablename__ = "auth_identities"
    __table_args__ = (UniqueConstraint("provider", "subject", name="uq_identity_provider_subject"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("auth_users.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(32, collation=BINARY))
    subject: Mapped[str] = mapped_column(String(255, collation=BINARY))
    # What the provider last said (for admins and the audit; never used to find the user).
    claimed_username: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Token(Base):
    """A session or personal access token; only its SHA-256 is stored."""

    __tablename__ = "auth_tokens"
    __table_args__ = (Index("ix_tokens_user", "user_id"), Index("ix_tokens_kind_expires", "kind", "expires_at"),
                      Index("ix_tokens_kind_revoked", "kind", "revoked_at"))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("auth_users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))          # session | personal
    scope: Mapped[str] = mapped_column(String(8), default="write", server_default="write")  # read | write
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))        # shown in lists so people can tell tokens apart
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Where a login session started (User-Agent, address): how a person tells them apart.
    device: Mapped[str] = mapped_column(String(200), default="", server_default="")
    source_ip: Mapped[str] = mapped_column(String(64), default="", server_default="")


class BlacklistEntry(Base):
    __tablename__ = "auth_blacklist"

    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("auth_users.id", ondelete="CASCADE"),
                                         primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AuditEntry(Base):
    """Append-only: rows are inserted, never updated; deleted only by retention, after
    ``RETENTION_DAYS.audit`` (services/auth/retention.py)."""

    __tablename__ = "auth_audit"
    __table_args__ = (Index("ix_audit_time", "created_at"), Index("ix_audit_actor", "actor"),
                      Index("ix_audit_action", "action"))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    event_id: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    actor: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255), default="")
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    source_ip: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DATETIME(fsp=6), default=utcnow)
