"""Entrypoints of the deploy service (services, versions, ingresses, templates, deploy records and their logs).

Kept thin: the status machine, rendering, template checks and diffs live in
``domain``. What leaves the service (apply requests, log lines, finished
records) goes through the service's outbox, in the transaction that decided it.
"""
from __future__ import annotations

import logging
from secrets import token_urlsafe

from nameko.dependency_providers import Config
from nameko.timer import timer
from sqlalchemy import select

from services.deploy import metrics as deploy_metrics
from services.deploy.batching import batch_handler
from services.deploy.domain import (catalog, ci_links, diff, lifecycle, manifests, names, once, policy, records,
                                    rendering, secret_env)
from services.deploy.domain.ci import PROVIDERS
from services.deploy.domain.ci import version_name as ci_version_name
from services.deploy.domain.templates import TemplateRefused
from services.deploy.models import CILink, ProcessedEvent, Record, Service, Version
from shared import redact
from shared.audit import AuditLog
from shared.errors import AlreadyExists, Invalid, NotFound, Unauthorized
from shared.events import EventPublisher, handle_event
from shared.idempotency import first_delivery
from shared.keys import Keys
from shared.outbound import Outbound
from shared.paging import page
from shared.rpc import ServiceRpc
from shared.secretbox import SecretBoxError, Secrets
from shared.service import ServiceBase, rpc
from shared.timeutil import parse_rfc3339, utcnow

log = logging.getLogger(__name__)

# Batches: up to this many reports / lines (an event may carry many), or what arrived
# within BATCH_WAIT seconds.
STATUS_BATCH, LOG_BATCH, BATCH_WAIT = 2000, 2000, 0.02


def _items(key: str):
    """Weight of an event for the batch handler: the length of its ``key`` list, else one."""
    def weigh(event) -> int:
        data = event.get("data") if isinstance(event, dict) else None
        items = data.get(key) if isinstance(data, dict) else None
        return len(items) if isinstance(items, list) else 1
    return weigh


class DeployService(ServiceBase):
    name = "deploy"

    config = Config()
    events = EventPublisher()
    audit = AuditLog()
    cluster = ServiceRpc("cluster")
    org = ServiceRpc("org")
    outbound = Outbound()
    secrets = Secrets()

    def _setting(self, key: str, default: float) -> float:
        return float(self.config.get(key, default))

    def _policy(self, app: str, clusters=None) -> policy.Context:
        """The workload policy for ``app``: its level (an admin may raise it to privileged)
        and the environments of ``clusters`` (none named: any environment, as at save time)."""
        level = (self.org.app_policy(app) or {}).get("pod_security")
        envs = None if clusters is None else [c.get("env") for c in clusters]
        return policy.Context.from_config(self.config, level, envs)

    # -- services ------------------------------------------------------------------
    @rpc
    def create_service(self, app, data, actor):
        return catalog.service_dict(catalog.create_service(self.db, app, data, actor["username"]))

    @rpc
    def list_services(self, app, limit=None, cursor=None):
        return page(self.db, select(Service).where(Service.app == app), Service.id, limit, cursor,
                    catalog.service_dict)

    @rpc
    def get_service(self, app, name):
        service = catalog.get_service(self.db, app, name)
        versions = self.db.scalars(select(Version).where(Version.service_id == service.id,
                                                         Version.deleted_at.is_(None)).order_by(Version.id))
        running = records.version_status(self.db, app, name)
        return {**catalog.service_dict(service),
                "versions": [{**catalog.version_dict(v), "clusters": running.get(v.name, [])} for v in versions]}

    @rpc
    def delete_service(self, app, name, actor, source_ip=None):
        catalog.delete_service(self.db, app, name)
        link = ci_links.delete_link(self.db, app, name)  # a later service of that name starts unlinked
        if link is not None:
            self.audit.record(actor["username"], "ci_unlinked", f"app:{app}/service:{name}",
                              {**ci_links.changes(link), "link_id": link.id, "why": "service deleted"}, source_ip)

    # -- versions ------------------------------------------------------------------
    @rpc
    def create_version(self, app, service, data, actor, source_ip=None):
        version = catalog.create_version(self.db, app, service, data, actor["username"], self._policy(app),
                                         box=self.secrets)
        self._audit_secret_env(actor, version, ([], None), source_ip)
        return catalog.version_dict(version)

    @rpc
    def list_versions(self, app, service, limit=None, cursor=None):
        catalog.get_service(self.db, app, service)
        stmt = select(Version).where(Version.app == app, Version.service == service, Version.deleted_at.is_(None))
        return page(self.db, stmt, Version.id, limit, cursor, catalog.version_dict)

    @rpc
    def get_version(self, app, service, name):
        version = catalog.version_dict(catalog.get_version(self.db, app, service, name))
        version["clusters"] = records.version_status(self.db, app, service).get(name, [])
        return version

    @rpc
    def update_version(self, app, service, name, data, actor, source_ip=None):
        current = catalog.get_version(self.db, app, service, name)
        before = (secret_env.names_of(current), current.secret_env_sealed)
        version = catalog.update_version(self.db, app, service, name, data, self._policy(app), box=self.secrets)
        self._audit_secret_env(actor, version, before, source_ip)
        return catalog.version_dict(version)

    def _audit_secret_env(self, actor, version, before, source_ip) -> None:
        """A change of a version's secret_env is audited by name: which were added or removed,
        and that the set changed — never a value."""
        names_before, sealed_before = before
        if version.secret_env_sealed == sealed_before:
            return
        after = secret_env.names_of(version)
        self.audit.record(actor["username"], "version_secret_env_changed",
                          f"app:{version.app}/service:{version.service}/version:{version.name}",
                          {"names": after, "added": sorted(set(after) - set(names_before)),
                           "removed": sorted(set(names_before) - set(after))}, source_ip)

    @rpc
    def version_clusters(self, app, service, name):
        """Where a delete of this version would go (the gateway checks the role per env)."""
        catalog.get_version(self.db, app, service, name)
        return records.clusters_of_version(self.db, app, service, name)

    @rpc
    def delete_version(self, app, service, name, actor, source_ip=None):
        version = catalog.get_version(self.db, app, service, name)
        clusters = records.clusters_of_version(self.db, app, service, name)
        version.deleted_at = utcnow()
        secret_env.forget(version)  # its sealed secrets go now; the delete record removes its Secret
        record_id = None
        if clusters:
            latest = self._latest_manifests(app, service, name)

            def render(record_id, cluster):
                return [manifests.identity(o) for o in latest.get(cluster) or []]

            record, outbox = records.create_record(
                self.db, app=app, action="delete", subject="version", clusters=clusters,
                actor=actor["username"], render=render, object_name=names.object_name(service, name),
                service=service, version=name, target_action="delete",
                intro=f"delete of {service}/{name} requested by {actor['username']}")
            record_id = record.id
            self._say(outbox)
        self.audit.record(actor["username"], "version_deleted", f"app:{app}/service:{service}/version:{name}",
                          {"record_id": record_id, "clusters": [c["name"] for c in clusters]}, source_ip)
        return {"record_id": record_id}

    def _latest_manifests(self, app, service, version) -> dict[str, list[dict]]:
        from services.deploy.models import Target

        rows = self.db.execute(
            select(Target.cluster, Target.manifests).join(Record, Record.id == Target.record_id)
            .where(Record.app == app, Record.service == service, Record.version == version,
                   Target.action == "apply").order_by(Target.id))
        latest: dict[str, list[dict]] = {}
        for cluster, stored in rows:
            latest[cluster] = stored
        return latest

    # -- ingresses -----------------------------------------------------------------
    @rpc
    def create_ingress(self, app, data, actor):
        return catalog.ingress_dict(catalog.create_ingress(self.db, app, data, actor["username"],
                                                                   self._policy(app),
                                                                   bool(actor.get("is_admin"))))

    @rpc
    def list_ingresses(self, app, limit=None, cursor=None):
        from services.deploy.models import Ingress

        return page(self.db, select(Ingress).where(Ingress.app == app), Ingress.id, limit, cursor,
                    catalog.ingress_dict)

    # -- templates -----------------------------------------------------------------
    @rpc
    def list_templates(self, apps):
        return {"items": catalog.list_templates(self.db, list(apps or [])), "next_cursor": None}

    @rpc
    def create_template(self, app, data, actor, source_ip=None):
        template = catalog.create_template(self.db, app, data, actor["username"], self._policy(app))
        self.audit.record(actor["username"], "template_created", f"app:{app}/template:{template.name}",
                          {"kind": template.kind}, source_ip)
        return catalog.template_dict(template)

    # -- deploys ---------------------------------------------------------------------
    def _render_version(self, app, service, name, clusters) -> list[dict]:
        version = catalog.get_version(self.db, app, service, name)
        template = catalog.resolve_template(self.db, app, "version", version.config.get("template"))
        try:
            return rendering.render_version(template, app, service, name, version.config,
                                            self._policy(app, clusters), secret_env.shape(version, service, name))
        except TemplateRefused as exc:
            raise rendering.refusal(exc, "The version does not render:", {"field": "template"})

    @rpc
    def deploy_version(self, app, service, name, clusters, actor, source_ip=None, idempotency_key=None):
        """``clusters``: ``[{"name", "env"}]``, resolved (and authorised) by the caller."""
        return self._once(actor, idempotency_key,
                          {"action": "deploy", "app": app, "service": service, "version": name, "clusters": clusters},
                          lambda: self._deploy_version(app, service, name, clusters, actor, source_ip))

    def _deploy_version(self, app, service, name, clusters, actor, source_ip):
        rendered = self._render_version(app, service, name, clusters)
        image = manifests.deployment_of(rendered)["spec"]["template"]["spec"]["containers"][0].get("image")
        record, outbox = records.create_record(
            self.db, app=app, action="deploy", subject="version", clusters=clusters, actor=actor["username"],
            render=lambda record_id, cluster: manifests.stamp_record(rendered, record_id),
            object_name=names.object_name(service, name), service=service, version=name,
            intro=f"deploy of {service}/{name} ({image}) to {', '.join(c['name'] for c in clusters)} "
                  f"requested by {actor['username']}")
        self._say(outbox)
        self.audit.record(actor["username"], "deploy", f"app:{app}/service:{service}/version:{name}",
                          {"record_id": record.id, "clusters": [c["name"] for c in clusters], "image": image},
                          source_ip)
        return {"record_id": record.id}

    @rpc
    def deploy_ingress(self, app, name, clusters, actor, source_ip=None, idempotency_key=None):
        return self._once(actor, idempotency_key,
                          {"action": "deploy", "app": app, "ingress": name, "clusters": clusters},
                          lambda: self._deploy_ingress(app, name, clusters, actor, source_ip))

    def _deploy_ingress(self, app, name, clusters, actor, source_ip):
        ingress = catalog.get_ingress(self.db, app, name)
        template = catalog.resolve_template(self.db, app, "ingress", ingress.config.get("template"))
        try:
            rendered = rendering.render_ingress(template, app, {"name": name, **ingress.config},
                                                self._policy(app, clusters))
        except TemplateRefused as exc:
            raise rendering.refusal(exc, "The ingress does not render:", {"field": "template"})
        record, outbox = records.create_record(
            self.db, app=app, action="deploy", subject="ingress", clusters=clusters, actor=actor["username"],
            render=lambda record_id, cluster: rendered, object_name=name, ingress=name,
            intro=f"deploy of ingress {name} ({ingress.config['host']}) requested by {actor['username']}")
        self._say(outbox)
        self.audit.record(actor["username"], "deploy", f"app:{app}/ingress:{name}",
                          {"record_id": record.id, "clusters": [c["name"] for c in clusters]}, source_ip)
        return {"record_id": record.id}

    @rpc
    def rollback(self, record_id, actor, source_ip=None, idempotency_key=None):
        return self._once(actor, idempotency_key, {"action": "rollback", "record_id": record_id},
                          lambda: self._rollback(record_id, actor, source_ip))

    def _once(self, actor, key, request, create):
        """Run ``create`` once per caller and ``Idempotency-Key`` (domain/once.py). The key
        is written first, in the record's transaction: a concurrent twin waits on it and
        gets 409 instead of making a second record."""
        key = once.check_key(key)
        if key is None:
            return create()
        print_ = once.fingerprint(**request)
        answer = once.recall(self.db, actor["username"], key, print_)
        if answer is not None:
            return {**answer, "replayed": True}
        remembered = once.remember(self.db, actor["username"], key, print_, {}, utcnow())
        answer = create()
        remembered.answer = answer
        return answer

    def _rollback(self, record_id, actor, source_ip):
        source, targets = records.rollback_source(self.db, record_id)
        stored = {t.cluster: t.manifests for t in targets if t.status == "succeeded"}
        clusters = [{"name": t.cluster, "env": t.env} for t in targets if t.status == "succeeded"]
        # What was allowed then may not be now (the policy or the app's level changed).
        try:
            ctx = self._policy(source.app, clusters)
            for objects in stored.values():
                policy.check(objects, ctx)
        except policy.PolicyRefused as exc:
            raise rendering.refusal(exc, "", {"record_id": source.id})
        if source.subject == "version":  # its Secret carries the version's values as they are now
            try:
                version = catalog.get_version(self.db, source.app, source.service, source.version)
            except NotFound:
                version = None
            secret = secret_env.shape(version, source.service, source.version)
            stored = {cluster: secret_env.refresh(objects, secret) for cluster, objects in stored.items()}
        record, outbox = records.create_record(
            self.db, app=source.app, action="rollback", subject=source.subject, clusters=clusters,
            actor=actor["username"],
            render=lambda new_id, cluster: manifests.stamp_record(stored[cluster], new_id),
            object_name=targets[0].object_name, service=source.service, version=source.version,
            ingress=source.ingress, rollback_of=source.id,
            intro=f"rollback to record {source.id} requested by {actor['username']}")
        self._say(outbox)
        self.audit.record(actor["username"], "rollback", f"app:{source.app}/record:{source.id}",
                          {"record_id": record.id, "rollback_of": source.id,
                           "clusters": [c["name"] for c in clusters]}, source_ip)
        return {"record_id": record.id}

    @rpc
    def preview_version(self, app, service, name, clusters):
        rendered = self._render_version(app, service, name, clusters)
        shown = [redact.desired(m) for m in rendered]  # Secret values never appear in a preview
        out = []
        for cluster in clusters:
            live = self.cluster.live_objects(cluster["name"], app, rendered)
            out.append({"cluster": cluster["name"], "env": cluster.get("env"),
                        "diff": diff.diff_all(shown, list(live or []) + [None] * (len(rendered) - len(live or [])))})
        return {"manifests": shown, "diff": out}

    # -- records -----------------------------------------------------------------------
    @rpc
    def get_record(self, record_id):
        return records.record_view(self.db, record_id)

    @rpc
    def list_records(self, app, service=None, version=None, limit=None, cursor=None):
        return records.list_records(self.db, app, service, version, limit, cursor)

    @rpc
    def record_logs(self, record_id, after=None, limit=None):
        return records.logs(self.db, record_id, after, limit)

    # -- applications ------------------------------------------------------------------
    @handle_event("org", "application_deleted")
    def on_application_deleted(self, event):
        """Nothing of a deleted app reaches a later app of the same name (domain/lifecycle.py)."""
        if not first_delivery(self.db, ProcessedEvent, event):
            return
        data = event.get("data") or {}
        try:
            before = parse_rfc3339(event.get("occurred_at") or "")
        except (TypeError, ValueError):
            before = utcnow()
        counts = lifecycle.forget_app(self.db, data.get("name"), data.get("app_id"), before)
        self.db.commit()
        log.info("application %s deleted: %s", data.get("name"), counts)

    # -- cluster events ------------------------------------------------------------------
    @batch_handler([("cluster", "apply_result"), ("cluster", "resource_status")],
                   queue="deploy-cluster-status", size=STATUS_BATCH, wait=BATCH_WAIT, weigh=_items("reports"))
    def on_cluster_status(self, events):
        """Apply results and runtime reports → target and record state (idempotent by the rules in
        ``domain.status``: a redelivered or stale one changes nothing)."""
        self._say(records.ingest(self.db, events))

    @batch_handler([("cluster", "log"), ("deploy", "log")], queue="deploy-log-lines",
                   size=LOG_BATCH, wait=BATCH_WAIT, weigh=_items("lines"), depth=2)
    def on_log_lines(self, events):
        """One multi-row INSERT per batch; each line's id comes from its event, so redeliveries add nothing."""
        rows = records.log_rows(events)
        if rows:
            records.store_log_lines(self.db.connection(), rows)

    @timer(interval=1)
    def sweep(self):
        """The clock of the level-triggered rules; one replica at a time does it."""
        interval = self._setting("DEPLOY_SWEEP_SECONDS", 5)
        key = Keys.from_config(self.config).lock("deploy-sweep")
        if not self.redis.set(key, "1", nx=True, px=int(interval * 1000)):
            return
        self._say(records.sweep(
            self.db, utcnow(), apply_timeout=self._setting("DEPLOY_APPLY_TIMEOUT_SECONDS", 30),
            max_attempts=int(self._setting("DEPLOY_APPLY_ATTEMPTS", 5)),
            deadline_grace=self._setting("DEPLOY_DEADLINE_GRACE_SECONDS", 15),
            refused_hold=self._setting("DEPLOY_REFUSED_SECONDS", 10)))
        once.forget_expired(self.db, utcnow())

    # -- what is said ------------------------------------------------------------------
    def _say(self, outbox: records.Outbox) -> None:
        """Stage the outbox's events in this transaction (shared.outbox): they leave once it
        commits, and the relay sends them if this process dies before that."""
        for request in outbox.apply_requests:
            # a version's Secret gets its values here, sealed for this request alone
            self.events.publish("apply_requested", secret_env.attach(self.db, self.secrets, request))
        if outbox.lines:
            self.events.publish("log", {"lines": outbox.lines})
        for record, kind, data in records.finished_events(self.db, outbox.finished):
            record_id = record.id
            deploy_metrics.record_finished(record, utcnow())
            # One id per record: whoever sees it twice (relay) knows it is the same notice.
            self.events.publish(kind, data, event_id=f"deploy-record-{record_id}-finished")

    # -- CI hand-off ----------------------------------------------------------------

    @rpc
    def link_ci(self, app, service, data, actor, source_ip=None):
        catalog.get_service(self.db, app, service)
        before = ci_links.changes(self.db.scalar(select(CILink).where(CILink.app == app,
                                                                      CILink.service == service)))
        link = ci_links.save_link(self.db, self.secrets, app, service, data, actor["username"],
                                  guard=self.outbound)
        after = ci_links.changes(link)
        # Never the token nor the webhook secret: that they were set, and what else changed.
        details = {**after, "link_id": link.id, "token_set": True,
                   "webhook_secret_set": bool((data or {}).get("webhook_secret"))}
        if before:
            details["changed"] = sorted(k for k in after if after[k] != before.get(k))
        self.audit.record(actor["username"], "ci_link_changed" if before else "ci_linked",
                          f"app:{app}/service:{service}", details, source_ip)
        return ci_links.link_dict(link)

    @rpc
    def get_ci_link(self, app, service):
        catalog.get_service(self.db, app, service)
        return ci_links.link_dict(ci_links.get_link(self.db, app, service))

    @rpc
    def unlink_ci(self, app, service, actor, source_ip=None):
        catalog.get_service(self.db, app, service)
        link = ci_links.delete_link(self.db, app, service)
        if link is None:
            raise NotFound(f"Service {service!r} is not linked to a CI repository.", {"service": service})
        self.audit.record(actor["username"], "ci_unlinked", f"app:{app}/service:{service}",
                          {**ci_links.changes(link), "link_id": link.id}, source_ip)

    @timer(interval=24 * 3600, eager=True)
    def reseal_ci_links(self):
        """At start: re-seal CI secrets migration 0019 left bound to names (it had no key)."""
        changed = ci_links.reseal_legacy(self.db, self.secrets)
        self.db.commit()
        if changed:
            log.info("re-sealed CI link secrets to their link ids", extra={"links": changed})

    @rpc
    def list_builds(self, app, service):
        link = ci_links.get_link(self.db, app, service)
        return {"items": [b.to_dict() for b in ci_links.provider_for(link, self.secrets, guard=self.outbound).builds(link.repo)]}

    @rpc
    def trigger_build(self, app, service, ref):
        if not isinstance(ref, str) or not ref.strip():
            raise Invalid("'ref' is required: the branch to build.", {"field": "ref"})
        link = ci_links.get_link(self.db, app, service)
        return ci_links.provider_for(link, self.secrets, guard=self.outbound).trigger(link.repo, ref.strip()).to_dict()

    @rpc
    def ci_webhook(self, provider, headers, body, path, link_id=None):
        """A CI's signed webhook at one link's address: checked against that link's secret
        only, and a finished tag build of that link's repository becomes a version of that
        link's service (and a deploy). Everything else is refused the same way."""
        if provider not in PROVIDERS:
            raise NotFound(f"There is no CI provider called {provider!r}.", {"provider": provider})
        if link_id is None:
            # The shared address of old (POST /hooks/ci/<provider>) named no link: a body's
            # repository slug chose the links, and any link to a slug vouched for all of them.
            # It now refuses everything, before reading the body (docs/architecture.md).
            raise Unauthorized(
                "This address takes no webhooks any more: post to the link's own webhook_url "
                f"(/api/v1/hooks/ci/{provider}/<link id>, answered when the service is linked).",
                {"webhook_url": f"/api/v1/hooks/ci/{provider}/<link id>"})
        link = ci_links.link_for_webhook(self.db, provider, link_id)
        secret = None
        if link is not None:
            try:
                secret = ci_links.webhook_secret(link, self.secrets)
            except SecretBoxError:
                log.warning("a CI link's webhook secret does not open; re-link it", extra={"link_id": link.id})
        # No such link (or one of another provider, or one whose secret does not open): the
        # same check against a secret nobody has, so the answer is the same 401 as a bad signature.
        event = PROVIDERS[provider].parse_webhook(headers, body.encode(), [secret or token_urlsafe(32)], path=path)
        if secret is None:
            raise Unauthorized("The webhook signature does not match.")
        build = event.build if event else None
        if build is None or not build.finished or event.repo != link.repo:
            return {"result": "ignored"}
        row = ci_links.record_build(self.db, link, build)
        if row is None:
            return {"result": "duplicate"}
        if build.status == "success" and build.tag:
            self._version_from_build(link, build, row)
        elif build.status != "success":
            self.events.publish("build_failed", {
                "app": link.app, "service": link.service, "ref": build.ref, "image": None,
                "build_number": build.number, "status": build.status, "link": build.link,
                "reason": f"the {link.provider} build {build.number} of {build.ref} ended {build.status}"})
        return {"result": "recorded"}

    def _version_from_build(self, link, build, row):
        """The tag's image as a new version, configured like the service's latest one."""
        name = ci_version_name(build.tag)
        image = f"{link.image}:{build.tag}"
        actor = {"id": 0, "username": f"ci:{link.provider}", "is_admin": False}
        latest = ci_links.latest_version(self.db, link.app, link.service)
        config = dict(latest.config) if latest is not None else {"port": 8080}
        config.update({"name": name, "image": image})
        try:
            version = catalog.create_version(self.db, link.app, link.service, config, actor["username"],
                                             self._policy(link.app))
            self.db.flush()  # its id binds the seal
            secret_env.inherit(self.secrets, version, latest)
        except (Invalid, AlreadyExists) as exc:
            row.error = exc.message
            self.events.publish("build_failed", {
                "app": link.app, "service": link.service, "ref": build.ref, "image": image,
                "build_number": build.number, "status": "error", "link": build.link,
                "reason": f"MAE could not make version {name!r}: {exc.message}"})
            return
        row.version = version.name
        self.events.publish("build_succeeded", {
            "app": link.app, "service": link.service, "ref": build.ref, "image": image,
            "build_number": build.number, "status": "success", "link": build.link,
            "reason": f"version {version.name} created"})
        if link.auto_deploy_env:
            clusters = [{"name": c["name"], "env": c["env"]} for c in self.cluster.list_clusters(link.auto_deploy_env)]
            if clusters:
                row.record_id = self.deploy_version(link.app, link.service, version.name, clusters, actor)["record_id"]
            else:
                row.error = f"no {link.auto_deploy_env} cluster to deploy to"
