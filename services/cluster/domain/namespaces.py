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


APP_ID = "mae.io/app-id"   # annotation: the application's id, the mark of ownership
APP = "mae.io/app"


def _upsert(db: Session, rows: list[tuple[str, str, int | None]], desired: str) -> None:
    now = utcnow()
    for start in range(0, len(rows), 500):
        chunk = rows[start:start + 500]
        if not chunk:
            continue
        stmt = insert(ClusterNamespace).values([
            {"cluster": c, "namespace": n, "app_id": app_id, "desired": desired, "state": "pending",
             "attempts": 0, "last_error": None, "updated_at": now} for c, n, app_id in chunk])
        stmt = stmt.on_duplicate_key_update(desired=stmt.inserted.desired, state="pending", attempts=0,
                                            last_error=None, updated_at=now,
                                            app_id=func.coalesce(stmt.inserted.app_id, ClusterNamespace.app_id))
        db.execute(stmt)


def want_everywhere(db: Session, namespace: str, clusters: list[str], desired: str = "present",
                    app_id: int | None = None) -> None:
    _upsert(db, [(c, namespace, app_id) for c in clusters], desired)


def want_on_cluster(db: Session, cluster: str, apps: list) -> None:
    """``apps``: ``(app_id, name)`` pairs (or bare names, from an older org service)."""
    pairs = [(a[0], a[1]) if isinstance(a, (list, tuple)) else (None, a) for a in apps]
    _upsert(db, [(cluster, name, app_id) for app_id, name in pairs], "present")


# Pod Security Admission on every namespace MAE creates: the cluster itself refuses what
# the baseline forbids, and warns and audits what restricted would (NAMESPACE_POD_SECURITY).
POD_SECURITY = {"enforce": "baseline", "warn": "restricted", "audit": "restricted", "version": "latest"}


def pod_security_labels(setting: dict | None = None) -> dict:
    levels = {**POD_SECURITY, **(setting or {})}
    version = str(levels.get("version") or "latest")
    out = {}
    for mode in ("enforce", "warn", "audit"):
        if levels.get(mode):
            out[f"pod-security.kubernetes.io/{mode}"] = str(levels[mode])
            out[f"pod-security.kubernetes.io/{mode}-version"] = version
    return out


def mark(namespace: str, app_id: int | None, pod_security: dict | None = None) -> dict:
    """The labels and annotations that make a namespace this app's (docs/architecture.md),
    with its Pod Security levels."""
    meta = {"labels": {**MANAGED_BY, APP: namespace, **pod_security_labels(pod_security)}}
    if app_id is not None:
        meta["annotations"] = {APP_ID: str(app_id)}
    return meta


def owned(live: dict | None, namespace: str, app_id: int | None) -> bool:
    """Whether ``live`` is the namespace MAE made for this app: MAE's labels, and the app's
    id when both sides know it (namespaces made before ids were marked carry none)."""
    meta = (live or {}).get("metadata") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    if labels.get("app.kubernetes.io/managed-by") != "mae" or labels.get(APP) != namespace:
        return False
    marked = annotations.get(APP_ID)
    return app_id is None or marked is None or marked == str(app_id)


class NotOurs(ClusterError):
    def __init__(self, namespace: str):
        super().__init__("NotManaged", f"namespace {namespace} exists on the cluster and was not created by "
                                       "MAE for this application; MAE does not adopt, change or delete it", 409)


def exists(client: ClusterClient, namespace: str) -> bool:
    return client.get(NAMESPACE, None, namespace) is not None


def work(db: Session, cluster: str, states=("pending", "failed"), limit: int = 5000) -> list[ClusterNamespace]:
    return list(db.scalars(select(ClusterNamespace).where(
        ClusterNamespace.cluster == cluster, ClusterNamespace.state.in_(states))
        .order_by(ClusterNamespace.id).limit(limit)))


def enact(client: ClusterClient, namespace: str, desired: str, app_id: int | None = None,
          pod_security: dict | None = None) -> None:
    """Make the cluster match the intent; idempotent. A namespace that exists without this
    app's mark is never adopted (``NotOurs``, the row fails with that reason) nor deleted
    (the row is done: the app's intent no longer concerns it)."""
    if desired == "present":
        body = {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": namespace, **mark(namespace, app_id, pod_security)}}
        try:
            client.create(NAMESPACE, None, body)
        except ClusterError as exc:
            if exc.code != 409:
                raise
            if not owned(client.get(NAMESPACE, None, namespace), namespace, app_id):
                raise NotOurs(namespace) from None
    else:
        live = client.get(NAMESPACE, None, namespace)
        if live is not None and owned(live, namespace, app_id):
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
