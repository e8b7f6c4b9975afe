"""An application's namespace on every cluster, as rows of (cluster, namespace, desired, state).

Intent is written first (``present``/``absent``, state ``pending``) and committed;
then the cluster is asked. The outcome is written back only if the intent has
not changed meanwhile (an app deleted while its namespace was being created
must not end up "ok, present"). Pending and failed rows are retried by the
service's timer, which is how a cluster that was down catches up.
"""
from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.mysql import insert
from sqlalchemy.orm import Session

from services.cluster.mke.client import ClusterClient, ClusterError
from services.cluster.mke.kinds import KINDS
from services.cluster.models import ClusterNamespace
from shared.timeutil import rfc3339, utcnow

MANAGED_BY = {"app.kubernetes.io/managed-by": "mae"}
NAMESPACE = KINDS["Namespace"]


def _upsert(db: Session, pairs: list[tuple[str, str]], desired: str) -> None:
    now = utcnow()
    for start in range(0, len(pairs), 500):
        chunk = pairs[start:start + 500]
        if not chunk:
            continue
        stmt = insert(ClusterNamespace).values([
            {"cluster": c, "namespace": n, "desired": desired, "state": "pending", "attempts": 0,
             "last_error": None, "updated_at": now} for c, n in chunk])
        stmt = stmt.on_duplicate_key_update(desired=stmt.inserted.desired, state="pending",
                                            attempts=0, last_error=None, updated_at=now)
        db.execute(stmt)


def want_everywhere(db: Session, namespace: str, clusters: list[str], desired: str = "present") -> None:
    _upsert(db, [(c, namespace) for c in clusters], desired)


def want_on_cluster(db: Session, cluster: str, namespaces: list[str]) -> None:
    _upsert(db, [(cluster, n) for n in namespaces], "present")


def work(db: Session, cluster: str, states=("pending", "failed"), limit: int = 5000) -> list[ClusterNamespace]:
    return list(db.scalars(select(ClusterNamespace).where(
        ClusterNamespace.cluster == cluster, ClusterNamespace.state.in_(states))
        .order_by(ClusterNamespace.id).limit(limit)))


def enact(client: ClusterClient, namespace: str, desired: str) -> None:
    """Make the cluster match the intent; idempotent (exists/absent already is fine)."""
    if desired == "present":
        body = {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": namespace, "labels": {**MANAGED_BY, "mae.io/app": namespace}}}
        try:
            client.create(NAMESPACE, None, body)
        except ClusterError as exc:
            if exc.code != 409:
                raise
    else:
        client.remove(NAMESPACE, None, namespace)


def record(db: Session, row_id: int, desired: str, error: ClusterError | None) -> None:
    """Write the outcome back, unless the intent changed in between."""
    if error is None and desired == "absent":
        db.execute(delete(ClusterNamespace).where(ClusterNamespace.id == row_id,
                                                  ClusterNamespace.desired == "absent"))
        return
    values = {"state": "ok", "last_error": None, "updated_at": utcnow()} if error is None else \
        {"state": "failed", "last_error": str(error)[:1000], "attempts": ClusterNamespace.attempts + 1,
         "updated_at": utcnow()}
    db.execute(update(ClusterNamespace).where(ClusterNamespace.id == row_id,
                                              ClusterNamespace.desired == desired).values(**values))


def summary(db: Session, cluster: str) -> dict:
    """For GET /clusters/{name}: how many are in place, which wait, which failed and why."""
    ok = db.scalar(select(func.count()).select_from(ClusterNamespace).where(
        ClusterNamespace.cluster == cluster, ClusterNamespace.state == "ok")) or 0
    pending, failed = [], []
    for row in work(db, cluster, limit=200):
        item = {"namespace": row.namespace, "desired": row.desired, "attempts": row.attempts,
                "last_error": row.last_error, "updated_at": rfc3339(row.updated_at)}
        (pending if row.state == "pending" else failed).append(item)
    return {"ok": ok, "pending": pending, "failed": failed}
