"""Shipping a version to its users: route a service's traffic to it, restart, scale or retire it.

Each is a deploy record like a deploy (one target per cluster, a log, final states,
``deploy.succeeded``/``deploy.failed``), so it is watched, audited and rolled back the same way.

* **Route.** Every MAE service has one stable Kubernetes Service, ``names.routed_name(service)``
  (plain ``<service>``), whose selector names the pods of the routed version. Routing applies
  that Service with the new version's pod selector: the endpoints move in one step, the old
  version's pods keep running (nothing restarts, nothing is unavailable), and ingress routes
  without a ``version`` (they point at the stable Service) follow. A route is a record of
  subject ``route``: rolling back to an earlier route record re-applies its Service, i.e. the
  version routed then. ``version: null`` stops routing there (the stable Service is deleted).
  Only a version whose last deploy on that cluster succeeded may get traffic
  (``version_not_ready``); a routed version cannot be retired or deleted (``version_routed``).
* **Restart** re-applies the version's latest manifests on each cluster with the pod template
  annotated ``kubectl.kubernetes.io/restartedAt`` (what ``kubectl rollout restart`` does): a
  rolling restart under the Deployment's strategy.
* **Scale** re-applies them with ``spec.replicas`` changed. The version's configuration keeps
  its own ``replicas``: a later deploy of the version renders that again (as ``kubectl apply``
  undoes a ``kubectl scale``).
* **Retire** removes the version's objects (Deployment, Service, its Secret) from those clusters;
  the version stays and can be deployed again.
"""
from __future__ import annotations

import copy
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.deploy.domain import catalog, manifests, names, policy, records
from services.deploy.domain.config import MAX_REPLICAS
from services.deploy.models import Record, Target
from shared.errors import Conflict, Invalid, VersionNotReady, VersionRouted
from shared.timeutil import rfc3339

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
ROUTED_VERSION = "mae.io/routed-version"


def routed(db: Session, app: str, service: str) -> dict[str, str | None]:
    """Per cluster, the version that gets the service's traffic there: that of the latest route
    record that succeeded on it (``None`` where routing was stopped)."""
    latest = (select(func.max(Target.id)).join(Record, Record.id == Target.record_id)
              .where(Record.app == app, Record.service == service, Record.subject == "route",
                     Record.deleted_app_id.is_(None), Target.status == "succeeded")
              .group_by(Target.cluster))
    rows = db.execute(select(Target.cluster, Target.action, Record.version)
                      .join(Record, Record.id == Target.record_id).where(Target.id.in_(latest)))
    return {cluster: (version if action == "apply" else None) for cluster, action, version in rows}


def check_not_routed(db: Session, app: str, service: str, version: str, clusters: list[str] | None) -> None:
    """409 ``version_routed`` if the version gets traffic on any of ``clusters`` (None: anywhere)."""
    where = sorted(c for c, v in routed(db, app, service).items()
                   if v == version and (clusters is None or c in clusters))
    if where:
        raise VersionRouted(f"Version {version!r} gets {service!r}'s traffic on {', '.join(where)}; "
                            f"route the service to another version there first.",
                            {"service": service, "version": version, "clusters": where})


def check_ready(db: Session, app: str, service: str, version: str, clusters: list[str]) -> None:
    """409 ``version_not_ready`` unless the version's last deploy on each of ``clusters`` succeeded
    (a retired or failed version gets no traffic)."""
    last = _last_targets(db, app, service, version)
    not_ready = [c for c in clusters
                 if not ((last.get(c) or {}).get("status") == "succeeded" and last[c].get("action") == "apply")]
    if not_ready:
        raise VersionNotReady(
            f"Version {version!r} of {service!r} is not ready on {', '.join(not_ready)}: traffic goes only to "
            f"a version whose last deploy there succeeded.",
            {"service": service, "version": version, "clusters": not_ready})


def _last_targets(db: Session, app: str, service: str, version: str) -> dict[str, dict]:
    return {t["cluster"]: t for t in records.version_status(db, app, service).get(version, [])}


def latest_applied(db: Session, app: str, service: str, version: str) -> dict[str, list[dict]]:
    """Per cluster, the manifests of the version's latest apply there (deploy, rollback,
    restart or scale)."""
    rows = db.execute(
        select(Target.cluster, Target.manifests).join(Record, Record.id == Target.record_id)
        .where(Record.app == app, Record.service == service, Record.version == version,
               Record.subject == "version", Record.deleted_app_id.is_(None), Target.action == "apply")
        .order_by(Target.id))
    return {cluster: stored for cluster, stored in rows}


def _where_it_runs(db: Session, app: str, service: str, version: str, clusters: list[dict],
                   strict: bool, doing: str) -> list[dict]:
    """The clusters of ``clusters`` where the version's objects are (its last action there was
    an apply). Named clusters (``strict``) must all qualify; an environment keeps those that do."""
    last = _last_targets(db, app, service, version)
    running = [c for c in clusters if (last.get(c["name"]) or {}).get("action") == "apply"
               and last[c["name"]]["status"] != "pending"]
    missing = [c["name"] for c in clusters if c not in running]
    if (strict and missing) or not running:
        raise Conflict(f"Version {version!r} of {service!r} is not running on {', '.join(missing)}; "
                       f"deploy it there before you {doing} it.",
                       {"service": service, "version": version, "clusters": missing})
    return running


def _pod_selector(objects: list[dict]) -> dict:
    deployment = manifests.deployment_of(objects) or {}
    return dict(((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})


def _ports(objects: list[dict], selector: dict) -> list[dict]:
    """The ports of the version's own Service (the one selecting its pods), or port 80 → the
    container's first port."""
    for obj in objects:
        if obj["kind"] == "Service" and (obj.get("spec") or {}).get("selector") == selector:
            return [{k: v for k, v in p.items() if k != "nodePort"} for p in obj["spec"].get("ports") or []]
    containers = (manifests.deployment_of(objects) or {})["spec"]["template"]["spec"]["containers"]
    port = next((p.get("containerPort") for p in containers[0].get("ports") or []), 80)
    return [{"name": "http", "port": 80, "targetPort": port}]


def stable_service(app: str, service: str, version: str, objects: list[dict]) -> dict:
    """The service's stable Service, selecting ``version``'s pods (``objects``: its manifests)."""
    selector = _pod_selector(objects)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": names.routed_name(service), "namespace": app,
                         "labels": {names.MANAGED_BY: "mae", names.APP: app, names.SERVICE: service},
                         "annotations": {ROUTED_VERSION: version}},
            "spec": {"type": "ClusterIP", "selector": selector, "ports": _ports(objects, selector)}}


def route(db: Session, app: str, service: str, version: str | None, clusters: list[dict], actor: str,
          ctx: policy.Context) -> tuple[Record, records.PendingEvents]:
    catalog.get_service(db, app, service)
    where = ", ".join(c["name"] for c in clusters)
    if version is None:
        stable = {"apiVersion": "v1", "kind": "Service",
                  "metadata": {"name": names.routed_name(service), "namespace": app}}
        return records.create_record(
            db, app=app, action="route", subject="route", clusters=clusters, actor=actor,
            render=lambda record_id, cluster: [stable], object_name=names.routed_name(service),
            service=service, target_action="delete",
            intro=f"stop routing {service}'s traffic on {where}, requested by {actor}")
    catalog.get_version(db, app, service, version)
    check_ready(db, app, service, version, [c["name"] for c in clusters])
    applied = latest_applied(db, app, service, version)
    stable = {c["name"]: [stable_service(app, service, version, applied[c["name"]])] for c in clusters}
    for objects in stable.values():
        policy.check(objects, ctx)
    return records.create_record(
        db, app=app, action="route", subject="route", clusters=clusters, actor=actor,
        render=lambda record_id, cluster: stable[cluster], object_name=names.routed_name(service),
        service=service, version=version,
        intro=f"route {service}'s traffic to {version} on {where}, requested by {actor}")


def _reapply(db: Session, app: str, service: str, version: str, clusters: list[dict], actor: str,
             action: str, change, intro: str) -> tuple[Record, records.PendingEvents]:
    applied = latest_applied(db, app, service, version)
    changed = {}
    for c in clusters:
        objects = copy.deepcopy(applied[c["name"]])
        change(manifests.deployment_of(objects))
        changed[c["name"]] = objects
    return records.create_record(
        db, app=app, action=action, subject="version", clusters=clusters, actor=actor,
        render=lambda record_id, cluster: manifests.stamp_record(changed[cluster], record_id),
        object_name=names.object_name(service, version), service=service, version=version, intro=intro)


def restart(db: Session, app: str, service: str, version: str, clusters: list[dict], actor: str, now: datetime,
            strict: bool = True) -> tuple[Record, list[dict], records.PendingEvents]:
    catalog.get_version(db, app, service, version)
    clusters = _where_it_runs(db, app, service, version, clusters, strict, "restart")

    def annotate(deployment):
        template_meta = deployment["spec"]["template"].setdefault("metadata", {})
        template_meta.setdefault("annotations", {})[RESTARTED_AT] = rfc3339(now)

    record, pending = _reapply(db, app, service, version, clusters, actor, "restart", annotate,
                               f"rolling restart of {service}/{version} on "
                               f"{', '.join(c['name'] for c in clusters)} requested by {actor}")
    return record, clusters, pending


def check_replicas(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_REPLICAS:
        raise Invalid(f"'replicas' must be a whole number from 0 to {MAX_REPLICAS}.", {"field": "replicas"})
    return value


def scale(db: Session, app: str, service: str, version: str, clusters: list[dict], replicas, actor: str,
          strict: bool = True) -> tuple[Record, list[dict], records.PendingEvents]:
    replicas = check_replicas(replicas)
    catalog.get_version(db, app, service, version)
    clusters = _where_it_runs(db, app, service, version, clusters, strict, "scale")

    def set_replicas(deployment):
        deployment["spec"]["replicas"] = replicas

    record, pending = _reapply(db, app, service, version, clusters, actor, "scale", set_replicas,
                               f"scale of {service}/{version} to {replicas} replicas on "
                               f"{', '.join(c['name'] for c in clusters)} requested by {actor}")
    return record, clusters, pending


def retire(db: Session, app: str, service: str, version: str, clusters: list[dict], actor: str,
           strict: bool = True) -> tuple[Record, list[dict], records.PendingEvents]:
    catalog.get_version(db, app, service, version)
    clusters = _where_it_runs(db, app, service, version, clusters, strict, "retire")
    check_not_routed(db, app, service, version, [c["name"] for c in clusters])
    applied = latest_applied(db, app, service, version)
    record, pending = records.create_record(
        db, app=app, action="retire", subject="version", clusters=clusters, actor=actor,
        render=lambda record_id, cluster: [manifests.identity(o) for o in applied.get(cluster) or []],
        object_name=names.object_name(service, version), service=service, version=version,
        target_action="delete",
        intro=f"retire of {service}/{version} from {', '.join(c['name'] for c in clusters)} requested by {actor}")
    return record, clusters, pending
