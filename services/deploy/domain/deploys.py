"""The requests that make a deploy record: deploy a version, roll back to a
record, delete a version from where it runs. Each renders (or reuses) the manifests,
checks them against the workload policy now in force and returns the new record with
what it has to say (``records.PendingEvents``).

``policy_for(app, clusters)`` is the caller's: the workload policy for ``app`` in the
environments of ``clusters`` (the app's level comes from the org service).
"""
from __future__ import annotations

from typing import Callable

from sqlalchemy.orm import Session

from services.deploy.domain import (catalog, diff, ingresses, manifests, names, policy, records, rendering,
                                    secret_env, shipping)
from services.deploy.domain.templates import TemplateRefused
from services.deploy.models import Record
from shared.errors import NotFound
from shared.timeutil import utcnow

PolicyFor = Callable[[str, "list[dict] | None"], policy.Context]


def cluster_names(clusters) -> list[str]:
    return [c["name"] for c in clusters]


def render_version(db: Session, app: str, service: str, name: str, ctx: policy.Context) -> list[dict]:
    version = catalog.get_version(db, app, service, name)
    template = catalog.resolve_template(db, app, "version", version.config.get("template"))
    try:
        return rendering.render_version(template, app, service, name, version.config, ctx,
                                        secret_env.shape(version, service, name))
    except TemplateRefused as exc:
        raise rendering.refusal(exc, "The version does not render:", {"field": "template"})


def preview_diffs(shown: list[dict], rendered: int, clusters, live: list) -> list[dict]:
    """Per cluster, the diff of the ``shown`` manifests against the ``live`` objects the
    cluster service found for them (``None`` where it found none)."""
    out = []
    for cluster, found in zip(clusters, live):
        found = list(found or [])
        out.append({"cluster": cluster["name"], "env": cluster.get("env"),
                    "diff": diff.diff_all(shown, found + [None] * (rendered - len(found)))})
    return out


def deploy_version(db: Session, app: str, service: str, name: str, clusters, actor: str,
                   ctx: policy.Context) -> tuple[Record, records.PendingEvents, str | None]:
    """The record, its outbox and the image deployed."""
    rendered = render_version(db, app, service, name, ctx)
    image = manifests.deployment_of(rendered)["spec"]["template"]["spec"]["containers"][0].get("image")
    record, outbox = records.create_record(
        db, app=app, action="deploy", subject="version", clusters=clusters, actor=actor,
        render=lambda record_id, cluster: manifests.stamp_record(rendered, record_id),
        object_name=names.object_name(service, name), service=service, version=name,
        intro=f"deploy of {service}/{name} ({image}) to {', '.join(cluster_names(clusters))} requested by {actor}")
    return record, outbox, image


def rollback(db: Session, record_id, actor: str,
             policy_for: PolicyFor) -> tuple[Record, Record, list[dict], records.PendingEvents]:
    """``(new record, the record rolled back to, clusters, outbox)``."""
    source, targets = records.rollback_source(db, record_id)
    stored = {t.cluster: t.manifests for t in targets if t.status == "succeeded"}
    clusters = [{"name": t.cluster, "env": t.env} for t in targets if t.status == "succeeded"]
    if source.subject == "route" and source.version:  # traffic goes back only to a version still there
        shipping.check_ready(db, source.app, source.service, source.version, cluster_names(clusters))
    if source.subject == "ingress":  # its hosts may have gone to another app since
        ingresses.check_rollback(db, source.app, source.ingress, stored)
    # What was allowed then may not be now (the policy or the app's level changed).
    try:
        ctx = policy_for(source.app, clusters)
        for objects in stored.values():
            policy.check(objects, ctx)
    except policy.PolicyRefused as exc:
        raise rendering.refusal(exc, "", {"record_id": source.id})
    if source.subject == "version":  # its Secret carries the version's values as they are now
        try:
            version = catalog.get_version(db, source.app, source.service, source.version)
        except NotFound:
            version = None
        secret = secret_env.shape(version, source.service, source.version)
        stored = {cluster: secret_env.refresh(objects, secret) for cluster, objects in stored.items()}
    record, outbox = records.create_record(
        db, app=source.app, action="rollback", subject=source.subject, clusters=clusters, actor=actor,
        render=lambda new_id, cluster: manifests.stamp_record(stored[cluster], new_id),
        object_name=targets[0].object_name, service=source.service, version=source.version,
        ingress=source.ingress, rollback_of=source.id,
        intro=f"rollback to record {source.id} requested by {actor}")
    return record, source, clusters, outbox


def delete_version(db: Session, app: str, service: str, name: str,
                   actor: str) -> tuple[Record | None, list[dict], records.PendingEvents | None]:
    """The version is gone at once (its sealed secrets with it); where it runs, a delete
    record removes its objects (and its Secret): ``(record or None, clusters, outbox or None)``."""
    version = catalog.get_version(db, app, service, name)
    shipping.check_not_routed(db, app, service, name, None)
    clusters = records.clusters_of_version(db, app, service, name)
    version.deleted_at = utcnow()
    secret_env.forget(version)
    if not clusters:
        return None, clusters, None
    latest = shipping.latest_applied(db, app, service, name)

    def render(record_id, cluster):
        return [manifests.identity(o) for o in latest.get(cluster) or []]

    record, outbox = records.create_record(
        db, app=app, action="delete", subject="version", clusters=clusters, actor=actor, render=render,
        object_name=names.object_name(service, name), service=service, version=name, target_action="delete",
        intro=f"delete of {service}/{name} requested by {actor}")
    return record, clusters, outbox
