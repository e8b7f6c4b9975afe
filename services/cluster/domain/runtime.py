"""Pods and events of an app's namespace, as the API shows them (plain functions).

The namespace is the application's name; the gateway has checked the caller's role
before asking. Only namespaces MAE keeps for an app on a cluster (a
``cluster_namespaces`` row it wants present) are read, so a name that is not an
app's namespace (``kube-system``) reads nothing. Pods of a version are found by the
labels MAE renders on them (docs/contracts.md, ``services/deploy/domain/names.py``
``selector``): ``mae.io/app``, ``mae.io/service``, ``mae.io/version``.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.cluster.mke.client import ClusterError
from services.cluster.models import Cluster, ClusterNamespace
from shared.errors import NotFound, Unavailable

APP, SERVICE, VERSION = "mae.io/app", "mae.io/service", "mae.io/version"
# Container states that explain a pod that does not run, most telling first.
FAILING = ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError",
           "InvalidImageName", "RunContainerError", "CreateContainerError", "OOMKilled")
MAX_EVENTS = 200


def selector(app: str, service: str | None = None, version: str | None = None) -> str:
    """The label selector of an app's pods (of one service, of one version)."""
    parts = [(APP, app), (SERVICE, service), (VERSION, version)]
    return ",".join(f"{key}={value}" for key, value in parts if value)


def app_clusters(db: Session, namespace: str, only: str | None = None) -> list[Cluster]:
    """The clusters on which MAE keeps this app's namespace (``only``: that one, or ``NotFound``)."""
    names = set(db.scalars(select(ClusterNamespace.cluster).where(
        ClusterNamespace.namespace == namespace, ClusterNamespace.desired == "present")))
    if only is not None:
        names &= {only}
        if not names:
            raise NotFound(f"The application has no namespace on a cluster called {only!r}.", {"cluster": only})
    if not names:
        return []
    return list(db.scalars(select(Cluster).where(Cluster.name.in_(names)).order_by(Cluster.name)))


def unavailable(cluster: str, exc: ClusterError) -> Unavailable:
    return Unavailable(f"Cluster {cluster!r} cannot be read right now ({exc.reason}: {exc.message})"[:500],
                       {"cluster": cluster, "reason": exc.reason})


def _meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def pod_reason(pod: dict) -> str | None:
    """Why a pod does not run as it should: a failing container state first, any waiting or
    last-terminated reason next, the pod's own (``Evicted``) last."""
    status = pod.get("status") or {}
    seen = []
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        state = cs.get("state") or {}
        for key in ("waiting", "terminated"):
            reason = (state.get(key) or {}).get("reason")
            if reason and reason != "Completed":
                seen.append(reason)
        last = ((cs.get("lastState") or {}).get("terminated") or {}).get("reason")
        if last and last != "Completed" and not (state.get("running") and cs.get("ready")):
            seen.append(last)
    for reason in FAILING:
        if reason in seen:
            return reason
    return seen[0] if seen else status.get("reason")


def pod_row(cluster: str, pod: dict) -> dict:
    status = pod.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return {"cluster": cluster, "name": _meta(pod).get("name"), "phase": status.get("phase"), "ready": ready,
            "restarts": sum(int(cs.get("restartCount") or 0) for cs in status.get("containerStatuses") or []),
            "reason": pod_reason(pod), "started_at": status.get("startTime"),
            "container": first_container(pod)}


def first_container(pod: dict) -> str | None:
    containers = (pod.get("spec") or {}).get("containers") or []
    return containers[0].get("name") if containers else None


def event_row(cluster: str, event: dict) -> dict:
    involved = event.get("involvedObject") or {}
    series = event.get("series") or {}
    return {"cluster": cluster, "object": f"{involved.get('kind')}/{involved.get('name')}",
            "type": event.get("type") or "Normal", "reason": event.get("reason"),
            "message": event.get("message"),
            "count": int(series.get("count") or event.get("count") or 1),
            "last_seen": (series.get("lastObservedTime") or event.get("lastTimestamp") or event.get("eventTime")
                          or _meta(event).get("creationTimestamp"))}


def objects_of(pods: list[dict], replicasets: list[dict]) -> set[tuple[str, str]]:
    """(kind, name) of a service's or version's pods, ReplicaSets and their Deployments."""
    found = {("Pod", _meta(p).get("name")) for p in pods}
    for rs in replicasets:
        found.add(("ReplicaSet", _meta(rs).get("name")))
        for ref in _meta(rs).get("ownerReferences") or []:
            if ref.get("kind") == "Deployment":
                found.add(("Deployment", ref.get("name")))
    return found


def newest_first(rows: list[dict], limit: int = MAX_EVENTS) -> list[dict]:
    return sorted(rows, key=lambda r: r.get("last_seen") or "", reverse=True)[:limit]
