"""Tables owned by the deploy service. No other service reads them.

Applications are referred to by name (their namespace): the org service owns
them, and names never change.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy import false as sa_false
from sqlalchemy.dialects.mysql import DATETIME
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.processed_events import processed_events_model
from shared.timeutil import utcnow


# Microseconds: a record's transitions happen within the same second.
Time = DateTime().with_variant(DATETIME(fsp=6), "mysql", "mariadb")


class Base(DeclarativeBase):
    pass


ProcessedEvent = processed_events_model(Base, "deploy")


class Service(Base):
    """A service of an application: a name its versions share."""

    __tablename__ = "deploy_services"
    __table_args__ = (UniqueConstraint("app", "name", name="uq_deploy_service"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    app: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(Time, default=utcnow)


class Version(Base):
    """A version of a service: a Deployment + a Service on each cluster it is deployed to.

    ``config`` is the checked config (image, port, replicas, env, ...); ``secret_env``
    is kept apart from it, sealed (a CI build's copy of the config does not carry it).
    ``deleted_at`` is set once a delete record was made; the row stays for history.
    """

    __tablename__ = "deploy_versions"
    __table_args__ = (UniqueConstraint("service_id", "name", name="uq_deploy_version"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    service_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("deploy_services.id", ondelete="CASCADE"))
    app: Mapped[str] = mapped_column(String(63))
    service: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(63))
    config: Mapped[dict] = mapped_column(JSON)
    # secret_env (domain/secret_env.py): the values sealed, bound to this row's id, and the
    # names in clear; both null when the version has none (and once it is deleted).
    secret_env_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    secret_env_keys: Mapped[list | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(Time, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Time, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(Time, nullable=True)


class Ingress(Base):
    __tablename__ = "deploy_ingresses"
    __table_args__ = (UniqueConstraint("app", "name", name="uq_deploy_ingress"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    app: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(63))
    config: Mapped[dict] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(Time, default=utcnow)


class HostOwner(Base):
    """Which application an ingress host belongs to: one app per host, whatever the path
    (a unique key, so two apps racing for a host cannot both win)."""

    __tablename__ = "deploy_host_owners"

    host: Mapped[str] = mapped_column(String(253), primary_key=True)
    app: Mapped[str] = mapped_column(String(63), index=True)
    created_at: Mapped[datetime] = mapped_column(Time, default=utcnow)


class Template(Base):
    """A user template of an application (built-in ones live in files)."""

    __tablename__ = "deploy_templates"
    __table_args__ = (UniqueConstraint("app", "name", name="uq_deploy_template"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    app: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    fields: Mapped[list] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(Time, default=utcnow)


class Record(Base):
    """One action (deploy, rollback, delete) of a version or an ingress on a set of clusters."""

    __tablename__ = "deploy_records"
    __table_args__ = (Index("ix_deploy_records_app", "app", "service", "version", "id"),
                      Index("ix_deploy_records_app_id", "app", "id"),
                      Index("ix_deploy_records_app_service_id", "app", "service", "id"))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    app: Mapped[str] = mapped_column(String(63))
    # deploy | rollback | delete | route | restart | scale | retire
    action: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(16))       # version | ingress | route
    service: Mapped[str | None] = mapped_column(String(63), nullable=True)
    version: Mapped[str | None] = mapped_column(String(63), nullable=True)
    ingress: Mapped[str | None] = mapped_column(String(63), nullable=True)
    rollback_of: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(Time, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(Time, nullable=True)
    # Set when the application is deleted (its id): the record stays for audit and is never
    # shown to, nor rolled back by, a later application of the same name.
    deleted_app_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class RequestKey(Base):
    """An ``Idempotency-Key`` a caller sent with a request that creates a record, and the
    answer it got (``domain/request_keys.py``)."""

    __tablename__ = "deploy_request_keys"
    __table_args__ = (Index("ix_deploy_request_keys_created", "created_at"),)

    actor: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)   # sha256 of the key
    fingerprint: Mapped[str] = mapped_column(String(64))                  # sha256 of the request
    answer: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Time, default=utcnow)


class Target(Base):
    """One cluster of a record, with the exact manifests applied there and its runtime state."""

    __tablename__ = "deploy_targets"
    __table_args__ = (UniqueConstraint("record_id", "cluster", name="uq_deploy_target"),
                      Index("ix_deploy_targets_object", "cluster", "namespace", "object_name", "status"),
                      Index("ix_deploy_targets_status", "status", "updated_at"))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    record_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("deploy_records.id", ondelete="CASCADE"))
    cluster: Mapped[str] = mapped_column(String(63))
    env: Mapped[str] = mapped_column(String(16))
    namespace: Mapped[str] = mapped_column(String(63))
    # The Deployment (versions) or Ingress (ingresses) this target is about.
    object_name: Mapped[str] = mapped_column(String(253))
    action: Mapped[str] = mapped_column(String(16), default="apply")   # apply | delete
    has_deployment: Mapped[bool] = mapped_column(Boolean, default=True)
    image: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # None once trimmed: a superseded target's, after RETENTION_DAYS.manifests (retention.py).
    manifests: Mapped[list | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    requested_at: Mapped[datetime | None] = mapped_column(Time, nullable=True)
    applied_uid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    applied_generation: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    seen_rv: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    seen_version: Mapped[str | None] = mapped_column(String(80), nullable=True)  # shared/reportorder.py
    seen_observed_generation: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    replicas: Mapped[dict] = mapped_column(JSON)
    progress_deadline_seconds: Mapped[int] = mapped_column(Integer, default=600)
    last_progress_at: Mapped[datetime | None] = mapped_column(Time, nullable=True)
    # Since when the cluster has refused to create this rollout's pods (the Deployment's
    # ReplicaFailure condition), and its words; cleared when the condition clears.
    refused_since: Mapped[datetime | None] = mapped_column(Time, nullable=True)
    refusal: Mapped[str | None] = mapped_column(Text, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(Time, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(Time, default=utcnow, onupdate=utcnow)


class LogLine(Base):
    """A line of a record's log. ``id`` is the ``seq`` readers page by; ``line_id``
    comes from the event that carried the line, so a redelivery adds nothing."""

    __tablename__ = "deploy_log_lines"
    __table_args__ = (Index("ix_deploy_log_lines_record", "record_id", "id"),
                      Index("ix_deploy_log_lines_time", "time"))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    line_id: Mapped[str] = mapped_column(String(80), unique=True)
    record_id: Mapped[int] = mapped_column(BigInteger)
    time: Mapped[datetime] = mapped_column(Time)
    cluster: Mapped[str] = mapped_column(String(63), default="")
    level: Mapped[str] = mapped_column(String(8), default="info")
    line: Mapped[str] = mapped_column(Text)


class CILink(Base):
    """A service's CI repository (one per service); token and webhook secret sealed."""

    __tablename__ = "deploy_ci_links"
    __table_args__ = (UniqueConstraint("app", "service", name="uq_deploy_ci_link"),
                      Index("ix_deploy_ci_links_repo", "provider", "repo"))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    app: Mapped[str] = mapped_column(String(63))
    service: Mapped[str] = mapped_column(String(63))
    provider: Mapped[str] = mapped_column(String(16))
    server: Mapped[str] = mapped_column(String(500))
    repo: Mapped[str] = mapped_column(String(255))
    image: Mapped[str] = mapped_column(String(255))
    auto_deploy_env: Mapped[str | None] = mapped_column(String(8), nullable=True)
    auto_route: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    token_sealed: Mapped[str] = mapped_column(Text)
    webhook_secret_sealed: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(Time, default=utcnow, onupdate=utcnow)


class CIBuild(Base):
    """A build outcome MAE received; unique per (link, build number, status), so a
    replayed webhook finds its row and changes nothing."""

    __tablename__ = "deploy_ci_builds"
    __table_args__ = (UniqueConstraint("link_id", "number", "status", name="uq_deploy_ci_build"),
                      Index("ix_deploy_ci_builds_record", "record_id"),
                      Index("ix_deploy_ci_builds_created", "created_at"))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    link_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("deploy_ci_links.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    event: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(255))
    link: Mapped[str] = mapped_column(String(500), default="")
    commit: Mapped[str] = mapped_column(String(64), default="")
    version: Mapped[str | None] = mapped_column(String(63), nullable=True)
    record_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(Time, default=utcnow)
