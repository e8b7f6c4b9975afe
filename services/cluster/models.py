"""Tables owned by the cluster service. No other service reads them."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Integer, String, Text, UniqueConstraint, Index
from sqlalchemy.dialects.mysql import DATETIME
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.processed_events import processed_events_model
from shared.timeutil import utcnow


class Base(DeclarativeBase):
    pass


ProcessedEvent = processed_events_model(Base, "cluster")


class Cluster(Base):
    """A registered cluster. The ServiceAccount token is sealed with the secret box
    (context ``cluster:<name>:token``); the operator's report token is kept only as
    its SHA-256."""

    __tablename__ = "cluster_clusters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    env: Mapped[str] = mapped_column(String(8))
    server: Mapped[str] = mapped_column(String(512))
    ca_cert: Mapped[str] = mapped_column(Text)
    token_sealed: Mapped[str] = mapped_column(Text)
    report_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reachable: Mapped[bool] = mapped_column(Boolean, default=True)
    probe_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    probed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_report_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Rotation (domain/registry.py): every credential change bumps the generation, which keys
    # each replica's cached client; the replaced report token works until ``..._prev_until``.
    credentials_generation: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    report_token_prev_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    report_token_prev_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # When the probes began to fail; whether cluster.unreachable left for this outage.
    unreachable_since: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    unreachable_announced: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class ClusterNamespace(Base):
    """Where one application's namespace stands on one cluster.

    ``desired`` is present or absent; ``state`` pending / ok / failed. Rows that are
    absent and done are deleted. A timer retries pending and failed rows, so a
    cluster that was down catches up when it returns.
    """

    __tablename__ = "cluster_namespaces"
    __table_args__ = (UniqueConstraint("cluster", "namespace", name="uq_cluster_namespace"),
                      Index("ix_cluster_namespaces_state", "state"))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    cluster: Mapped[str] = mapped_column(String(63))
    namespace: Mapped[str] = mapped_column(String(63))
    # The application's id (org), marked on the namespace; None for rows from before it was kept.
    app_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    desired: Mapped[str] = mapped_column(String(8), default="present")
    state: Mapped[str] = mapped_column(String(8), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class AppPolicy(Base):
    """An application's own namespace policy, set by a platform admin in org and received
    with ``org.app_policy_changed`` (or ``application_created``, ``all_apps``):
    ``{"pod_security", "quota", "limits"}`` (``services/cluster/domain/defences.py``).
    Keyed by the app's id, so a later app of the same name never inherits it. ``changed_at``
    is when org changed it: an older message never overwrites a newer policy."""

    __tablename__ = "cluster_app_policies"

    app_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    app: Mapped[str] = mapped_column(String(63))
    policy: Mapped[dict] = mapped_column(JSON)
    changed_at: Mapped[datetime] = mapped_column(DATETIME(fsp=6))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class ResourceReport(Base):
    """The latest operator report per object: newer resourceVersions replace older ones.

    ``published`` is false until ``cluster.resource_status`` left for it; a timer
    publishes what a crash between commit and publish left behind (an outbox).
    """

    __tablename__ = "cluster_reports"
    __table_args__ = (UniqueConstraint("cluster", "namespace", "kind", "name", name="uq_cluster_report_object"),
                      Index("ix_cluster_reports_published", "published"),
                      Index("ix_cluster_reports_received", "received_at"))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    cluster: Mapped[str] = mapped_column(String(63))
    namespace: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(253))
    uid: Mapped[str] = mapped_column(String(64))
    resource_version: Mapped[int] = mapped_column(BigInteger)
    # Where this report stands in its object's order (shared/reportorder.py): a report
    # replaces the stored one only if its key is larger.
    version_key: Mapped[str] = mapped_column(String(80), default="", server_default="")
    report: Mapped[dict] = mapped_column(JSON)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
