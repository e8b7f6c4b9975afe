"""The cluster registry: registration, report tokens, health.

Credentials: the ServiceAccount token is sealed with the secret box under the
context ``cluster:<name>:token`` (a sealed token copied onto another row does not
open), returned by no function here except ``credentials`` (for building the
cluster's client), and never logged. The report token is random, shown once,
stored as SHA-256: a leaked table does not let anyone post reports.

Rotation without re-registering: ``replace_credentials`` stores credentials already
checked against the cluster, sealed afresh (each replica's cached client is keyed by the
stored credentials, so all of them build a new one on their next use) and bumps
``credentials_generation``, which answers show; ``rotate_report_token``
keeps the replaced token's hash for ``REPORT_TOKEN_OVERLAP`` so the operator can be given the
new one meanwhile. ``note_probe``/``claim_unreachable`` decide when ``cluster.unreachable`` leaves.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from services.cluster.mke.client import ClusterError
from services.cluster.models import Cluster, ClusterNamespace, ResourceReport
from shared.errors import AlreadyExists, Invalid, NotFound, Unauthorized
from shared.names import is_label
from shared.timeutil import rfc3339, utcnow

REPORT_TOKEN_PREFIX = "mae_r_"
# An operator heartbeats at least every 30 s; three missed beats make a cluster unhealthy.
REPORT_STALE_SECONDS = 90
# How long a replaced report token still works (REPORT_TOKEN_OVERLAP_SECONDS).
REPORT_TOKEN_OVERLAP = 600
# How long probes must fail before cluster.unreachable is announced (CLUSTER_UNREACHABLE_SECONDS).
UNREACHABLE_AFTER = 60


def token_context(name: str) -> str:
    return f"cluster:{name}:token"


def report_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_report_token() -> str:
    return REPORT_TOKEN_PREFIX + secrets.token_urlsafe(32)


def get(db: Session, name) -> Cluster:
    # Not a label: absent, before any lookup ('TEST' would find 'test': MariaDB compares case-insensitively).
    cluster = db.scalar(select(Cluster).where(Cluster.name == name)) if is_label(name) else None
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


def holds_report_token(cluster: Cluster | None, token: str, now=None) -> bool:
    """The cluster's report token, or the one it replaced while that still works."""
    if cluster is None:
        return False
    digest = report_token_hash(token)
    if hmac.compare_digest(cluster.report_token_hash, digest):
        return True
    previous, until = cluster.report_token_prev_hash, cluster.report_token_prev_until
    return bool(previous and until and (now or utcnow()) < until and hmac.compare_digest(previous, digest))


def rotate_report_token(cluster: Cluster, overlap_seconds: float, now=None) -> tuple[str, object]:
    """A new report token; the current one keeps working for ``overlap_seconds`` (the one
    before it stops at once). Returns the token and when the old one stops."""
    now = now or utcnow()
    token = new_report_token()
    cluster.report_token_prev_hash = cluster.report_token_hash
    cluster.report_token_prev_until = (now + timedelta(seconds=max(0.0, overlap_seconds))).replace(microsecond=0)
    cluster.report_token_hash = report_token_hash(token)
    return token, cluster.report_token_prev_until


def replace_credentials(box, cluster: Cluster, data: dict) -> None:
    """Store credentials already checked against the cluster (``verify``): sealed as at
    registration (a new sealing, so every replica's client cache misses), one generation on."""
    cluster.server, cluster.ca_cert = data["server"], data["ca_cert"]
    cluster.token_sealed = box.encrypt(data["token"], token_context(cluster.name))
    cluster.credentials_generation = (cluster.credentials_generation or 1) + 1
    cluster.reachable, cluster.probe_error, cluster.probed_at = True, None, utcnow()
    cluster.unreachable_since, cluster.unreachable_announced = None, False


def note_probe(cluster: Cluster, error: str | None, now=None) -> None:
    """Record a probe: reachable, or unreachable since the first failure of this outage."""
    now = now or utcnow()
    cluster.reachable, cluster.probe_error, cluster.probed_at = error is None, error, now
    if error is None:
        cluster.unreachable_since, cluster.unreachable_announced = None, False
    elif cluster.unreachable_since is None:
        cluster.unreachable_since = now


def claim_unreachable(db: Session, name: str, after_seconds: float, now=None) -> Cluster | None:
    """The cluster, if it has been unreachable ``after_seconds`` and nobody announced this
    outage yet: one conditional UPDATE, so one caller across replicas gets it."""
    cutoff = (now or utcnow()) - timedelta(seconds=max(0.0, after_seconds))
    result = db.execute(
        update(Cluster).where(Cluster.name == name, Cluster.reachable.is_(False),
                              Cluster.unreachable_announced.is_(False), Cluster.unreachable_since <= cutoff)
        .values(unreachable_announced=True).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return None
    cluster = get(db, name)
    db.refresh(cluster)
    return cluster


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
            "last_report_at": rfc3339(cluster.last_report_at), "created_at": rfc3339(cluster.created_at),
            "unreachable_since": rfc3339(cluster.unreachable_since),
            "credentials_generation": cluster.credentials_generation}


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
