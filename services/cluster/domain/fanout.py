"""An app's namespaces on every cluster: asked for concurrently, recorded per row.

The rows of ``namespaces`` say what each cluster should have; the functions here
make the clusters so (``reconcile``), find what drifted (``heal``), probe a cluster
and do both (``tend``). ``clients`` is the service's ``Clients`` (services/cluster/mke/clients.py).
"""
from __future__ import annotations

import logging

import eventlet
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.cluster import metrics as cluster_metrics
from services.cluster.domain import defences, namespaces, registry
from services.cluster.mke import ClusterError
from services.cluster.models import Cluster
from shared.db_lease import Lease, new_holder

log = logging.getLogger(__name__)

# Concurrent namespace requests per cluster during a fan-out.
FANOUT_CONCURRENCY = 8
# How often a cluster's namespaces are compared with what MAE made (NAMESPACE_HEAL_SECONDS):
# three paged LISTs per cluster, so not every tend.
HEAL_SECONDS = 300.0
# How long a cluster's tend turn is held at a time while its namespaces are enacted (renewed after
# each batch of rows; given up at the end).
LEASE_SECONDS = 60.0


def taken(db: Session, clients, name: str) -> list[str]:
    """The reachable clusters on which a namespace ``name`` exists already. Clusters that do
    not answer are left out: if the namespace turns out to exist there, the fan-out refuses
    to adopt it, visibly."""
    clusters = list(db.scalars(select(Cluster).where(Cluster.reachable.is_not(False))))
    db.commit()
    found = []

    def probe(cluster):
        try:
            if namespaces.exists(clients.of(cluster, attempts=1), name):
                found.append(cluster.name)
        except ClusterError:
            pass

    pool = eventlet.GreenPool(FANOUT_CONCURRENCY)
    for cluster in clusters:
        pool.spawn_n(probe, cluster)
    pool.waitall()
    return sorted(found)


def everywhere(db: Session, clients, config: dict, name: str) -> None:
    """Enact namespace ``name`` (its rows committed already) on every cluster."""
    clusters = list(db.scalars(select(Cluster.name)))
    db.commit()
    for cluster in clusters:
        reconcile(db, clients, config, cluster, names={name})


def tend_lease(db: Session, name: str) -> Lease:
    """The turn to tend cluster ``name`` (one replica at a time enacts its namespaces)."""
    return Lease(db.get_bind(), "cluster", f"cluster-tend:{name}", new_holder())


def fan_out(db: Session, clients, config: dict, name: str) -> dict:
    """A newly registered cluster's namespaces, all of them, in the cluster's tend turn: a tend
    of it running at the same time would enact the same rows twice. If a tend holds the turn
    now, that tend enacts them (its reconcile goes through every row)."""
    lease = tend_lease(db, name)
    if not lease.take(LEASE_SECONDS):
        return {}
    try:
        return reconcile(db, clients, config, name, lease=lease)
    finally:
        lease.give_up()


def reconcile(db: Session, clients, config: dict, cluster_name: str, names: set | None = None,
              attempts: int | None = None, lease: Lease | None = None) -> dict:
    """Bring the cluster's namespaces to what the rows want, ``namespaces.BATCH`` rows at a time
    until every row was tried once (a newly registered cluster gets all its apps' namespaces in
    one go, not a batch per tend; ``lease``, the tend turn held, is renewed after each batch);
    stops at the first transient failure (a cluster that is down is not asked a thousand times)."""
    done = failed = 0
    after = 0
    while True:
        batch = _reconcile_batch(db, clients, config, cluster_name, names, attempts, after)
        if batch is None:
            return {} if after == 0 else {"done": done, "failed": failed}
        done, failed = done + batch["done"], failed + batch["failed"]
        if batch["last"] is None or batch["stopped"] or batch["seen"] < namespaces.BATCH:
            return {"done": done, "failed": failed}
        after = batch["last"]
        if lease is not None:
            lease.renew(LEASE_SECONDS)


def _reconcile_batch(db: Session, clients, config: dict, cluster_name: str, names: set | None,
                     attempts: int | None, after: int) -> dict | None:
    cluster = db.scalar(select(Cluster).where(Cluster.name == cluster_name))
    if cluster is None:
        return None
    found = namespaces.work(db, cluster_name, after=after)
    last = found[-1].id if found else None
    rows = [(r.id, r.namespace, r.desired, r.app_id) for r in found if names is None or r.namespace in names]
    policy_of = namespaces.policies(db, [r[3] for r in rows if r[2] == "present"])
    db.commit()
    if not rows:
        return {"done": 0, "failed": 0, "seen": len(found), "last": last, "stopped": False}
    client = clients.of(cluster, **({"attempts": attempts} if attempts else {}))
    settings = defences.Settings.from_config(config)
    outcomes: list[tuple[int, str, ClusterError | None]] = []
    stop = []

    def one(row):
        row_id, namespace, desired, app_id = row
        if stop:
            return
        try:
            namespaces.enact(client, namespace, desired, app_id, defences.for_app(settings, policy_of.get(app_id)))
            outcomes.append((row_id, desired, None))
        except ClusterError as exc:
            outcomes.append((row_id, desired, exc))
            if exc.transient:
                stop.append(exc)

    pool = eventlet.GreenPool(FANOUT_CONCURRENCY)
    for row in rows:
        pool.spawn_n(one, row)
    pool.waitall()
    for row_id, desired, error in outcomes:
        namespaces.record(db, row_id, desired, error)
    if stop:
        # Rows never tried stay pending; the cluster is visibly unreachable.
        registry.note_probe(cluster, str(stop[0])[:1000])
    db.commit()
    return {"done": sum(1 for o in outcomes if o[2] is None), "failed": sum(1 for o in outcomes if o[2]),
            "seen": len(found), "last": last, "stopped": bool(stop)}


def heal_due(db: Session, config: dict, name: str) -> bool:
    """Every NAMESPACE_HEAL_SECONDS per cluster, whichever replica tends it (0: every tend);
    a turn in the database (shared/db_lease.py), so healing goes on while Redis is away."""
    seconds = float(config.get("NAMESPACE_HEAL_SECONDS", HEAL_SECONDS) or 0)
    if seconds <= 0:
        return True
    return Lease(db.get_bind(), "cluster", f"cluster-heal:{name}", new_holder()).take(seconds)


def heal(db: Session, clients, config: dict, cluster: Cluster) -> int | None:
    """Compare the cluster's MAE namespaces, quotas and limit ranges with the rows that
    are in place, and set the drifted ones back to pending (the reconcile that follows
    puts them right). Costs three paged LISTs and one SELECT; writes only drifted rows."""
    name = cluster.name
    rows = namespaces.kept(db, name)
    policy_of = namespaces.policies(db, [r[2] for r in rows])
    db.commit()
    if not rows:
        return 0
    try:
        found = namespaces.survey(clients.of(cluster, attempts=1))
    except ClusterError as exc:
        log.warning("healing namespaces skipped: %s", exc, extra={"cluster": name})
        return None
    drifted = namespaces.drifted(rows, found, defences.Settings.from_config(config), policy_of)
    for i, (_, namespace, what) in enumerate(drifted):
        cluster_metrics.namespace_drifted(name, what)
        if i < 20:  # a changed default drifts every namespace: the first few say which
            log.warning("namespace %s drifted on %s (%s): healing", namespace, name, ", ".join(what),
                        extra={"cluster": name, "namespace": namespace})
    if drifted:
        log.warning("%d namespaces drifted on %s: healing", len(drifted), name, extra={"cluster": name})
        namespaces.retry(db, drifted)
        db.commit()
    return len(drifted)


def tend(db: Session, clients, config: dict, name: str, heal_now: bool = False, lease: Lease | None = None) -> dict:
    """Probe one cluster; if it answers, heal its namespaces (when due) and retry the pending ones."""
    cluster = db.scalar(select(Cluster).where(Cluster.name == name))
    if cluster is None:
        return {}
    db.commit()  # no transaction stays open while the cluster is asked
    try:
        clients.of(cluster, attempts=1).check()
        registry.note_probe(cluster, None)
    except ClusterError as exc:
        registry.note_probe(cluster, str(exc)[:1000])
    reachable = cluster.reachable
    db.commit()
    result = {"reachable": reachable}
    if reachable:
        if heal_now or heal_due(db, config, name):
            result["drifted"] = heal(db, clients, config, cluster)
        result.update(reconcile(db, clients, config, name, lease=lease))
    return result
