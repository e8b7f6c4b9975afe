"""An application's namespace on every cluster, as rows of (cluster, namespace, desired, state).

Intent is written first (``present``/``absent``, state ``pending``) and committed;
then the cluster is asked. The outcome is written back only if the intent has
not changed meanwhile (an app deleted while its namespace was being created
must not end up "ok, present"). Pending and failed rows are retried by the
service's timer, which is how a cluster that was down catches up.

A present namespace carries MAE's mark, Pod Security labels, a ResourceQuota and a
LimitRange (``defences``). The timer also *heals*: every ``NAMESPACE_HEAL_SECONDS`` it
lists the cluster's MAE namespaces, quotas and limit ranges (three paged LISTs, not a
GET per app), compares them with the ``ok`` rows (``defences.drift``) and sets the
drifted rows back to ``pending``, so the same ``enact`` puts them right.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects.mysql import insert
from sqlalchemy.orm import Session

from services.cluster.domain import defences
from services.cluster.domain.defences import APP, APP_ID, MANAGED_BY, Defences, pod_security_labels
from services.cluster.mke.client import ClusterClient, ClusterError
from services.cluster.mke.kinds import KINDS, NAMESPACE_DEFENCES
from services.cluster.models import AppPolicy, ClusterNamespace
from shared.timeutil import rfc3339, utcnow

log = logging.getLogger(__name__)

NAMESPACE = KINDS["Namespace"]
QUOTA = NAMESPACE_DEFENCES["ResourceQuota"]
LIMIT_RANGE = NAMESPACE_DEFENCES["LimitRange"]
MAE_SELECTOR = "app.kubernetes.io/managed-by=mae"


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


def app_entries(apps: list) -> list[tuple[int | None, str, dict | None]]:
    """org's ``all_apps()``: ``[id, name, policy]`` triples, ``[id, name]`` pairs or bare
    names (older org services) → ``(app_id, name, policy or None)``."""
    out = []
    for a in apps or []:
        if isinstance(a, (list, tuple)):
            out.append((a[0], a[1], a[2] if len(a) > 2 else None))
        else:
            out.append((None, a, None))
    return out


def want_on_cluster(db: Session, cluster: str, apps: list) -> None:
    """``apps``: ``(app_id, name, policy)`` triples, ``(app_id, name)`` pairs or bare names."""
    _upsert(db, [(cluster, name, app_id) for app_id, name, _ in app_entries(apps)], "present")


# -- each app's own policy ------------------------------------------------------------------

def keep_policies(db: Session, entries: list[tuple[int, str, dict | None]], changed_at: datetime) -> None:
    """Store apps' policies as of ``changed_at``; a stored policy changed later than that is
    kept (messages may arrive out of order). ``None`` (unknown) entries are skipped."""
    rows = [{"app_id": app_id, "app": name, "policy": defences.clean_policy(policy), "changed_at": changed_at,
             "updated_at": utcnow()}
            for app_id, name, policy in entries if isinstance(app_id, int) and policy is not None]
    for start in range(0, len(rows), 500):
        stmt = insert(AppPolicy).values(rows[start:start + 500])
        newer = AppPolicy.changed_at <= stmt.inserted.changed_at
        # MariaDB assigns left to right: changed_at last, after the others compared with it.
        stmt = stmt.on_duplicate_key_update([
            ("policy", case((newer, stmt.inserted.policy), else_=AppPolicy.policy)),
            ("app", case((newer, stmt.inserted.app), else_=AppPolicy.app)),
            ("updated_at", stmt.inserted.updated_at),
            ("changed_at", func.greatest(AppPolicy.changed_at, stmt.inserted.changed_at))])
        db.execute(stmt)


def forget_policy(db: Session, app_id: int | None) -> None:
    if isinstance(app_id, int):
        db.execute(delete(AppPolicy).where(AppPolicy.app_id == app_id))


def policies(db: Session, app_ids) -> dict[int, dict]:
    ids = sorted({i for i in app_ids if i is not None})
    out = {}
    for start in range(0, len(ids), 1000):
        out.update(db.execute(select(AppPolicy.app_id, AppPolicy.policy)
                              .where(AppPolicy.app_id.in_(ids[start:start + 1000]))).all())
    return out


def redo(db: Session, namespace: str, app_id: int | None) -> None:
    """The app's present namespaces, everywhere, to be enacted again (its policy changed)."""
    match = ClusterNamespace.app_id.is_(None) if app_id is None else \
        (ClusterNamespace.app_id == app_id) | ClusterNamespace.app_id.is_(None)
    db.execute(update(ClusterNamespace).where(
        ClusterNamespace.namespace == namespace, ClusterNamespace.desired == "present", match)
        .values(state="pending", attempts=0, last_error=None, updated_at=utcnow()))


def mark(namespace: str, app_id: int | None, pod_security: dict | None = None) -> dict:
    """The labels and annotations that make a namespace this app's (docs/architecture.md),
    with its Pod Security levels."""
    meta = {"labels": {**MANAGED_BY, APP: namespace, **pod_security_labels(pod_security)}}
    if app_id is not None:
        meta["annotations"] = {APP_ID: str(app_id)}
    return meta


def reclaimable(live: dict | None, namespace: str, app_id: int | None) -> bool:
    """A namespace whose labels were removed by hand but that still carries this app's id:
    MAE's, and its mark is put back. Without the id (or with another app's) it is not."""
    meta = (live or {}).get("metadata") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    return app_id is not None and annotations.get(APP_ID) == str(app_id) \
        and labels.get("app.kubernetes.io/managed-by") in (None, "mae") and labels.get(APP) in (None, namespace)


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


# Rows a reconcile reads (and then enacts) at a time.
BATCH = 5000


def work(db: Session, cluster: str, states=("pending", "failed"), limit: int | None = None,
         after: int = 0) -> list[ClusterNamespace]:
    """The cluster's rows still to be enacted, in id order, after row ``after`` (``BATCH`` at most)."""
    return list(db.scalars(select(ClusterNamespace).where(
        ClusterNamespace.cluster == cluster, ClusterNamespace.state.in_(states), ClusterNamespace.id > after)
        .order_by(ClusterNamespace.id).limit(limit or BATCH)))


class Terminating(ClusterError):
    def __init__(self, namespace: str):
        super().__init__("Terminating", f"namespace {namespace} is being deleted; MAE creates it again once "
                                        "it is gone", 409)


def enact(client: ClusterClient, namespace: str, desired: str, app_id: int | None = None,
          want: Defences | None = None) -> None:
    """Make the cluster match the intent; idempotent. A namespace that exists without this
    app's mark is never adopted (``NotOurs``, the row fails with that reason) nor deleted
    (the row is done: the app's intent no longer concerns it). A present namespace gets
    ``want``'s Pod Security labels, LimitRange and ResourceQuota (the LimitRange first: a
    quota on CPU and memory refuses pods without requests, which its defaults supply)."""
    if desired != "present":
        live = client.get(NAMESPACE, None, namespace)
        if live is not None and owned(live, namespace, app_id):
            client.remove(NAMESPACE, None, namespace)
        return
    want = want or defences.for_app(defences.Settings())
    meta = mark(namespace, app_id, want.pod_security)
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, **meta}}
    try:
        client.create(NAMESPACE, None, body)
        fresh = True
    except ClusterError as exc:
        if exc.code != 409:
            raise
        fresh = False
        live = client.get(NAMESPACE, None, namespace)
        if live is None:   # deleted in between: the next round creates it
            raise ClusterError("Conflict", f"namespace {namespace} went away while MAE created it; "
                                           "it is created on the next round", 409) from None
        if not owned(live, namespace, app_id) and not reclaimable(live, namespace, app_id):
            raise NotOurs(namespace) from None
        if (live.get("metadata") or {}).get("deletionTimestamp"):
            raise Terminating(namespace) from None
        _remark(client, live, meta)
    item = want.limits
    _keep(client, LIMIT_RANGE, namespace, defences.LIMITS_NAME,
          defences.limit_range_body(namespace, item) if item else None,
          lambda live: defences.limits_match(live, namespace, item), fresh)
    spec_hard = want.quota
    _keep(client, QUOTA, namespace, defences.QUOTA_NAME,
          defences.quota_body(namespace, spec_hard) if spec_hard else None,
          lambda live: defences.quota_matches(live, namespace, spec_hard), fresh)


def _remark(client: ClusterClient, live: dict, meta: dict) -> None:
    """Put MAE's labels and the app's id back on its namespace, keeping everything else (and
    a Pod Security level made stricter by hand: ``defences.keep_stricter``)."""
    current = live.get("metadata") or {}
    labels, annotations = current.get("labels") or {}, current.get("annotations") or {}
    wanted = defences.keep_stricter(labels, meta["labels"])
    if all(labels.get(k) == v for k, v in wanted.items()) and \
            all(annotations.get(k) == v for k, v in (meta.get("annotations") or {}).items()):
        return
    body = {**live, "metadata": {**{k: v for k, v in current.items() if k != "managedFields"},
                                 "labels": {**labels, **wanted},
                                 "annotations": {**annotations, **(meta.get("annotations") or {})}}}
    client.replace(NAMESPACE, None, current["name"], body)


def _keep(client: ClusterClient, kind, namespace: str, name: str, body: dict | None, matches, fresh: bool) -> None:
    """Create ``body``, or replace the object if it differs; with ``body`` None, remove MAE's
    own (labelled) object of that name. ``fresh``: the namespace was just created, empty."""
    if body is None:
        if not fresh:
            live = client.get(kind, namespace, name)
            if live is not None and not matches(live):
                client.remove(kind, namespace, name)
        return
    try:
        client.create(kind, namespace, body)
        return
    except ClusterError as exc:
        if exc.code != 409:
            raise
    live = client.get(kind, namespace, name)
    if live is None:
        client.create(kind, namespace, body)
    elif not matches(live):
        replacement = {**body, "metadata": {**body["metadata"],
                                            "resourceVersion": live["metadata"].get("resourceVersion")}}
        client.replace(kind, namespace, name, replacement)


def record(db: Session, row_id: int, desired: str, error: ClusterError | None) -> None:
    """Write the outcome back, unless the intent changed in between. Not synchronised with the
    session's objects: the ORM would test each statement against every row ``work`` loaded
    (5,000 per batch), which made a batch's bookkeeping quadratic — most of a fan-out's CPU."""
    plain = {"synchronize_session": False}
    if error is None and desired == "absent":
        db.execute(delete(ClusterNamespace).where(ClusterNamespace.id == row_id,
                                                  ClusterNamespace.desired == "absent").execution_options(**plain))
        return
    values = {"state": "ok", "last_error": None, "updated_at": utcnow()} if error is None else \
        {"state": "failed", "last_error": str(error)[:1000], "attempts": ClusterNamespace.attempts + 1,
         "updated_at": utcnow()}
    db.execute(update(ClusterNamespace).where(ClusterNamespace.id == row_id, ClusterNamespace.desired == desired)
               .values(**values).execution_options(**plain))


# -- healing ---------------------------------------------------------------------------------

def kept(db: Session, cluster: str) -> list[tuple[int, str, int | None]]:
    """The rows whose namespace is in place (present, ok): what healing compares."""
    return list(db.execute(select(ClusterNamespace.id, ClusterNamespace.namespace, ClusterNamespace.app_id)
                           .where(ClusterNamespace.cluster == cluster, ClusterNamespace.desired == "present",
                                  ClusterNamespace.state == "ok")).all())


def _by_namespace(client: ClusterClient, kind, name: str) -> dict[str, dict] | None:
    try:
        items = client.list(kind, None, field_selector=f"metadata.name={name}")
    except ClusterError as exc:
        if exc.code != 403:
            raise
        # MAE's deployer may not list them (an older RBAC): they are not compared.
        log.warning("cannot list %s on %s to heal them: %s", kind.plural, client.name, exc)
        return None
    return {(i.get("metadata") or {}).get("namespace"): i for i in items}


def survey(client: ClusterClient) -> dict:
    """What the cluster has, in three paged LISTs: MAE's namespaces (by its label), and the
    ``mae-limits``/``mae-quota`` objects of every namespace (by name; None if not listable)."""
    spaces = {(n.get("metadata") or {}).get("name"): n
              for n in client.list(NAMESPACE, None, label_selector=MAE_SELECTOR)}
    return {"namespaces": spaces, "limits": _by_namespace(client, LIMIT_RANGE, defences.LIMITS_NAME),
            "quotas": _by_namespace(client, QUOTA, defences.QUOTA_NAME)}


def drifted(rows: list[tuple[int, str, int | None]], found: dict, settings: defences.Settings,
            policy_of: dict[int, dict]) -> list[tuple[int, str, list[str]]]:
    """``(row id, namespace, what differs)`` for each kept row whose namespace is not as MAE made it."""
    spaces, limits, quotas = found["namespaces"], found["limits"], found["quotas"]
    out = []
    for row_id, namespace, app_id in rows:
        want = defences.for_app(settings, policy_of.get(app_id))
        what = defences.drift(namespace, app_id, want, spaces.get(namespace),
                              (quotas or {}).get(namespace), (limits or {}).get(namespace),
                              quotas_known=quotas is not None, limits_known=limits is not None)
        if what:
            out.append((row_id, namespace, what))
    return out


def retry(db: Session, found: list[tuple[int, str, list[str]]]) -> None:
    """Drifted rows back to pending (only if still ok and present: intent wins)."""
    now = utcnow()
    by_reason: dict[str, list[int]] = {}
    for row_id, _, what in found:
        by_reason.setdefault(f"Drifted: {', '.join(what)} changed on the cluster; MAE puts it back", []).append(row_id)
    for reason, ids in by_reason.items():   # a few statements, however many rows drifted
        for start in range(0, len(ids), 500):
            db.execute(update(ClusterNamespace).where(
                ClusterNamespace.id.in_(ids[start:start + 500]), ClusterNamespace.state == "ok",
                ClusterNamespace.desired == "present")
                .values(state="pending", attempts=0, updated_at=now, last_error=reason))


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
