"""The cluster registry: registration, report tokens, health.

Credentials: the ServiceAccount token is sealed with the secret box under the
context ``cluster:<name>:token`` (a sealed token copied onto another row does not
open), returned by no function here except ``credentials`` (for building the
cluster's client), and never logged. The report token is random, shown once,
stored as SHA-256: a leaked table does not let anyone post reports.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.cluster.mke.client import ClusterError
from services.cluster.models import Cluster, ClusterNamespace, ResourceReport
from shared.errors import AlreadyExists, Invalid, NotFound, Unauthorized
from shared.timeutil import rfc3339, utcnow

REPORT_TOKEN_PREFIX = "mae_r_"
# An operator heartbeats at least every 30 s; three missed beats make a cluster unhealthy.
REPORT_STALE_SECONDS = 90


def token_context(name: str) -> str:
    return f"cluster:{name}:token"


def report_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_report_token() -> str:
    return REPORT_TOKEN_PREFIX + secrets.token_urlsafe(32)


def get(db: Session, name) -> Cluster:
    cluster = db.scalar(select(Cluster).where(Cluster.name == name)) if isinstance(name, str) else None
    if cluster is None:
        raise NotFound(f"Cluster {name!r} was not found.", {"cluster": name})
    return cluster


def exists(db: Session, name: str) -> bool:
    return db.scalar(select(Cluster.id).where(Cluster.name == name)) is not None


def create(db: Session, box, data: dict) -> tuple[Cluster, str]:
    """Store an already-validated, already-checked registration; returns it and its report token."""
    if exists(db, data["name"]):
        raise AlreadyExists(f"A cluster called {data['name']!r} is registered already.",
                            {"cluster": data["name"]})
    token = new_report_token()
    cluster = Cluster(name=data["name"], env=data["env"], server=data["server"], ca_cert=data["ca_cert"],
                      token_sealed=box.encrypt(data["token"], token_context(data["name"])),
                      report_token_hash=report_token_hash(token), reachable=True,
                      probed_at=utcnow(), created_at=utcnow())
    db.add(cluster)
    db.flush()
    return cluster, token


def credentials(box, cluster: Cluster) -> tuple[str, str, str]:
    """(server, CA PEM, token) — only for building the cluster's client."""
    return cluster.server, cluster.ca_cert, box.decrypt(cluster.token_sealed, token_context(cluster.name))


def remove(db: Session, cluster: Cluster) -> None:
    db.execute(delete(ClusterNamespace).where(ClusterNamespace.cluster == cluster.name))
    db.execute(delete(ResourceReport).where(ResourceReport.cluster == cluster.name))
    db.delete(cluster)
    db.flush()


def refused() -> Unauthorized:
    return Unauthorized("The report token is not valid for this cluster.")


def reporter_shape_ok(name, token) -> bool:
    """Whether ``name`` and ``token`` could be a cluster and its report token at all
    (checked before any work; the token itself is checked by ``holds_report_token``)."""
    return isinstance(token, str) and token.startswith(REPORT_TOKEN_PREFIX) and isinstance(name, str)


def holds_report_token(cluster: Cluster | None, token: str) -> bool:
    return cluster is not None and hmac.compare_digest(cluster.report_token_hash, report_token_hash(token))


def healthy(cluster: Cluster, now=None) -> bool:
    now = now or utcnow()
    fresh = cluster.last_report_at is not None and \
        now - cluster.last_report_at <= timedelta(seconds=REPORT_STALE_SECONDS)
    return bool(cluster.reachable) and fresh


def to_dict(cluster: Cluster) -> dict:
    """What anyone may see: never the CA, the token or the report token."""
    return {"name": cluster.name, "env": cluster.env, "server": cluster.server,
            "healthy": healthy(cluster), "reachable": bool(cluster.reachable),
            "probe_error": cluster.probe_error, "probed_at": rfc3339(cluster.probed_at),
            "last_report_at": rfc3339(cluster.last_report_at), "created_at": rfc3339(cluster.created_at)}


def verify(clients, data: dict) -> dict:
    """Ask the cluster of a registration whether its credentials work: its version, or ``Invalid``."""
    probe = clients.probe(data["name"], data["server"], data["ca_cert"], data["token"], attempts=2)
    try:
        return probe.check()
    except ClusterError as exc:
        raise Invalid(f"The cluster refused these credentials: {exc.reason}: {exc.message}",
                      {"cluster": data["name"], "reason": exc.reason, "code": exc.code})
    finally:
        probe.close()
