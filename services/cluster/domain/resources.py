"""A version's objects on one cluster as a tree: its Deployment, the Deployment's ReplicaSets
(one per revision of the pod template) and each ReplicaSet's pods, with their states
(plain functions; ``RuntimeEntrypoints.version_resources`` reads, these shape).

The Deployment is the one the contract names (``S-V``, ``shared.names.object_name``);
ReplicaSets and pods are those carrying the version's labels. A pod belongs to the
ReplicaSet its ``ownerReferences`` name (by uid); a ReplicaSet's revision is its
``deployment.kubernetes.io/revision`` annotation, and the current one is the revision the
Deployment carries (without a Deployment: the newest).
"""
from __future__ import annotations

from services.cluster.domain.runtime import pod_row

REVISION = "deployment.kubernetes.io/revision"


def _meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def _int(value) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _revision(obj: dict) -> int:
    return _int((_meta(obj).get("annotations") or {}).get(REVISION))


def deployment_view(deployment: dict | None) -> dict | None:
    if deployment is None:
        return None
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    return {"name": _meta(deployment).get("name"), "generation": _int(_meta(deployment).get("generation")),
            "observed_generation": _int(status.get("observedGeneration")),
            "replicas": {"desired": _int(spec.get("replicas", 1)), "updated": _int(status.get("updatedReplicas")),
                         "ready": _int(status.get("readyReplicas")),
                         "available": _int(status.get("availableReplicas"))},
            "conditions": [{"type": c.get("type"), "status": c.get("status"), "reason": c.get("reason"),
                            "message": c.get("message")} for c in status.get("conditions") or []]}


def pod_view(pod: dict) -> dict:
    row = pod_row("", pod)
    out = {"name": row["name"], "phase": row["phase"], "ready": row["ready"], "restarts": row["restarts"],
           "created_at": _meta(pod).get("creationTimestamp")}
    node = (pod.get("spec") or {}).get("nodeName")
    for key, value in (("reason", row["reason"]), ("node", node)):
        if value:
            out[key] = value
    return out


def _owner_uids(obj: dict, kind: str) -> set[str]:
    return {r.get("uid") for r in _meta(obj).get("ownerReferences") or [] if r.get("kind") == kind}


def replicaset_views(replicasets: list[dict], pods: list[dict], deployment: dict | None) -> list[dict]:
    """The ReplicaSets, newest revision first, each with its pods (by name). With a
    Deployment, only the ReplicaSets it owns (a leftover of an earlier Deployment of the
    same name is not this one's history)."""
    if deployment is not None:
        uid = _meta(deployment).get("uid")
        replicasets = [rs for rs in replicasets if uid in _owner_uids(rs, "Deployment")]
    current = _revision(deployment) if deployment is not None else max(map(_revision, replicasets), default=0)
    out = []
    for rs in sorted(replicasets, key=lambda r: (_revision(r), _meta(r).get("name") or ""), reverse=True):
        uid = _meta(rs).get("uid")
        mine = sorted((p for p in pods if uid in _owner_uids(p, "ReplicaSet")), key=lambda p: _meta(p).get("name") or "")
        spec, status = rs.get("spec") or {}, rs.get("status") or {}
        out.append({"name": _meta(rs).get("name"), "revision": _revision(rs),
                    "replicas": {"desired": _int(spec.get("replicas", 1)), "ready": _int(status.get("readyReplicas")),
                                 "available": _int(status.get("availableReplicas"))},
                    "created_at": _meta(rs).get("creationTimestamp"),
                    "current": bool(current) and _revision(rs) == current, "pods": [pod_view(p) for p in mine]})
    return out


def item(where: dict, deployment: dict | None, replicasets: list[dict], pods: list[dict]) -> dict:
    """One cluster's tree (``where``: ``{"name", "env"}`` of the cluster)."""
    return {"cluster": where["name"], "env": where.get("env"), "reachable": True,
            "deployment": deployment_view(deployment),
            "replicasets": replicaset_views(replicasets, pods, deployment)}


def unreachable(where: dict, error: str) -> dict:
    """A cluster that could not be read: why, and no tree."""
    return {"cluster": where["name"], "env": where.get("env"), "reachable": False, "error": error[:500],
            "deployment": None, "replicasets": []}
