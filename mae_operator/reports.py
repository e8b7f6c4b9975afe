"""A Deployment with its ReplicaSets and Pods → one compact report (the data of
``cluster.resource_status`` in docs/contracts.md). Pure functions, no I/O."""
from __future__ import annotations

import hashlib
import json

# Annotations that only bloat reports sent over slow links.
DROPPED_ANNOTATIONS = ("mae.io/last-applied", "kubectl.kubernetes.io/last-applied-configuration",
                       "deployment.kubernetes.io/revision")
MAX_PODS = 20
REVISION = "deployment.kubernetes.io/revision"
FAILING = ("ImagePullBackOff", "ErrImagePull", "CrashLoopBackOff", "CreateContainerConfigError",
           "InvalidImageName", "RunContainerError")


def meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def rv_of(obj: dict) -> int:
    try:
        return int(meta(obj).get("resourceVersion") or 0)
    except ValueError:
        return 0


def owner(obj: dict, kind: str) -> str | None:
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("kind") == kind:
            return ref.get("name")
    return None


def old_replicasets(dep: dict, replicasets: list[dict]) -> set[str]:
    """Names of the Deployment's ReplicaSets of earlier revisions (empty while the
    Deployment's own revision is not known: then no pod is called old)."""
    revision = (meta(dep).get("annotations") or {}).get(REVISION)
    if not revision:
        return set()
    return {meta(rs).get("name") for rs in replicasets
            if (meta(rs).get("annotations") or {}).get(REVISION) not in (None, revision)}


def pod_summary(pod: dict, old: bool = False) -> dict:
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    waiting_reason, message = None, None
    for cs in statuses:
        state = cs.get("state") or {}
        if state.get("waiting") and state["waiting"].get("reason"):
            waiting_reason = state["waiting"]["reason"]
            message = state["waiting"].get("message")
            if waiting_reason in FAILING:
                break
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    summary = {"name": meta(pod).get("name"), "phase": status.get("phase"), "ready": ready,
               "restart_count": sum(int(cs.get("restartCount") or 0) for cs in statuses),
               "waiting_reason": waiting_reason, "message": (message or "")[:300] or None}
    if old:
        # A pod of an earlier revision (e.g. the previous, failing rollout being scaled
        # down): shown, but it says nothing about how the current rollout goes.
        summary["old"] = True
    return summary


def deployment_report(dep: dict, pods: list[dict], resource_version: int, observed_at: str,
                      events: list[dict] | None = None, old_replicasets: set[str] = frozenset(),
                      versions: dict | None = None) -> dict:
    m, spec, status = meta(dep), dep.get("spec") or {}, dep.get("status") or {}
    desired = spec.get("replicas", 1)
    pods = sorted(pods, key=lambda p: meta(p).get("name") or "")
    summaries = [pod_summary(p, owner(p, "ReplicaSet") in old_replicasets) for p in pods]
    # Pods that explain a failure first, so truncation never hides them.
    summaries.sort(key=lambda s: (bool(s.get("old")), s["waiting_reason"] not in FAILING, s["ready"]))
    report = {
        "namespace": m.get("namespace"), "kind": "Deployment", "name": m.get("name"),
        "uid": m.get("uid"), "generation": m.get("generation"),
        "observed_generation": status.get("observedGeneration"),
        "resource_version": str(max(resource_version, rv_of(dep))), "deleted": False,
        "labels": m.get("labels") or {},
        "annotations": {k: v for k, v in (m.get("annotations") or {}).items() if k not in DROPPED_ANNOTATIONS},
        "replicas": {"desired": desired, "updated": status.get("updatedReplicas", 0),
                     "ready": status.get("readyReplicas", 0), "available": status.get("availableReplicas", 0),
                     "unavailable": status.get("unavailableReplicas", 0)},
        "conditions": [{k: c.get(k) for k in ("type", "status", "reason", "message")}
                       for c in status.get("conditions") or []],
        "progress_deadline_seconds": spec.get("progressDeadlineSeconds", 600),
        "pods": summaries[:MAX_PODS],
        "events": (events or [])[-5:],
        "observed_at": observed_at,
    }
    if versions:  # per-stream versions: the order of reports of one resource_version
        report["versions"] = {**versions, "deployment": max(versions.get("deployment", 0), rv_of(dep))}
    return report


def deleted_report(dep: dict, resource_version: int, observed_at: str, versions: dict | None = None) -> dict:
    report = deployment_report(dep, [], resource_version, observed_at, versions=versions)
    report.update(deleted=True, pods=[], events=[])
    return report


def digest(report: dict) -> str:
    """What the report says, without when it was observed or the version counter:
    a status write that changes nothing we report is not worth sending."""
    body = {k: v for k, v in report.items() if k not in ("observed_at", "resource_version", "versions")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
