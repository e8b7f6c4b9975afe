"""Entrypoints of the deploy service (services, versions, ingresses, templates, deploy records and their logs).

Kept thin: logic lives in ``domain``; what the service says (``schemas``) leaves through
its outbox, in the transaction that decided it (``helpers.DeployHelpers._say``).
"""
from __future__ import annotations

import logging

from nameko.dependency_providers import Config
from nameko.timer import timer

from services.deploy.batching import batch_handler
from services.deploy.domain import (catalog, ci_builds, ci_links, deploys, lifecycle, records, request_keys,
                                    settings, shipping)
from services.deploy.helpers import DeployHelpers, weigh_by
from services.deploy.shipping_entrypoints import ShippingEntrypoints
from services.deploy.ingress_entrypoints import IngressEntrypoints
from services.deploy.template_entrypoints import TemplateEntrypoints
from services.deploy.retention import Retention
from services.deploy.models import ProcessedEvent
from shared import redact
from shared.audit import AuditLog
from shared.db import retry_deadlocks
from shared.errors import NotFound
from shared.events import EventPublisher, handle_event
from shared.processed_events import first_delivery
from shared.outbound import Outbound
from shared.rpc import ServiceRpc
from shared.secretbox import Secrets
from shared.service import ServiceBase, rpc
from shared.timeutil import utcnow

log = logging.getLogger(__name__)

# Batches: up to this many reports / lines (an event may carry many), or what arrived
# within BATCH_WAIT seconds.
STATUS_BATCH, LOG_BATCH, BATCH_WAIT = 2000, 2000, 0.02


class DeployService(ShippingEntrypoints, IngressEntrypoints, TemplateEntrypoints, DeployHelpers, Retention,
                    ServiceBase):
    name = "deploy"

    config = Config()
    events = EventPublisher()
    audit = AuditLog()
    cluster = ServiceRpc("cluster")
    org = ServiceRpc("org")
    outbound = Outbound()
    secrets = Secrets()

    # -- services ------------------------------------------------------------------
    @rpc
    def create_service(self, app, data, actor):
        return catalog.service_dict(catalog.create_service(self.db, app, data, actor["username"]))

    @rpc
    def list_services(self, app, limit=None, cursor=None):
        return catalog.list_services(self.db, app, limit, cursor)

    @rpc
    def get_service(self, app, name):
        return {**catalog.service_view(self.db, app, name, records.version_status(self.db, app, name)),
                "routed": shipping.routed(self.db, app, name)}

    @rpc
    def delete_service(self, app, name, actor, source_ip=None):
        catalog.delete_service(self.db, app, name)
        link = ci_links.delete_link(self.db, app, name)  # a later service of that name starts unlinked
        if link is not None:
            self._audit(actor, "ci_unlinked", f"app:{app}/service:{name}",
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
        return catalog.list_versions(self.db, app, service, limit, cursor)

    @rpc
    def get_version(self, app, service, name):
        version = catalog.version_dict(catalog.get_version(self.db, app, service, name))
        return {**version, "clusters": records.version_status(self.db, app, service).get(name, [])}

    @rpc
    def update_version(self, app, service, name, data, actor, source_ip=None):
        before = catalog.secret_env_before(catalog.get_version(self.db, app, service, name))
        version = catalog.update_version(self.db, app, service, name, data, self._policy(app), box=self.secrets)
        self._audit_secret_env(actor, version, before, source_ip)
        return catalog.version_dict(version)

    @rpc
    def version_clusters(self, app, service, name):
        """Where a delete of this version would go (the gateway checks the role per env)."""
        catalog.get_version(self.db, app, service, name)
        return records.clusters_of_version(self.db, app, service, name)

    @rpc
    def delete_version(self, app, service, name, actor, source_ip=None):
        record, clusters, outbox = deploys.delete_version(self.db, app, service, name, actor["username"])
        self._say(outbox)
        self._audit(actor, "version_deleted", f"app:{app}/service:{service}/version:{name}",
                    {"record_id": record and record.id, "clusters": deploys.cluster_names(clusters)}, source_ip)
        return {"record_id": record and record.id}

    # -- templates (ingresses: ingress_entrypoints.py) ------------------------------
    @rpc
    def list_templates(self, apps):
        return {"items": catalog.list_templates(self.db, list(apps or [])), "next_cursor": None}

    @rpc
    def create_template(self, app, data, actor, source_ip=None):
        template = catalog.create_template(self.db, app, data, actor["username"], self._policy(app))
        self._audit(actor, "template_created", f"app:{app}/template:{template.name}", {"kind": template.kind},
                    source_ip)
        return catalog.template_dict(template)

    # -- deploys (an Idempotency-Key makes each once per caller: domain/request_keys.py) --
    @rpc
    @retry_deadlocks()  # concurrent deploys' locks on deploy_targets' indexes may deadlock
    def deploy_version(self, app, service, name, clusters, actor, source_ip=None, idempotency_key=None):
        """``clusters``: ``[{"name", "env"}]``, resolved (and authorised) by the caller."""
        return self._once(actor, idempotency_key, lambda: self._deploy_version(app, service, name, clusters, actor,
                                                                               source_ip),
                          action="deploy", app=app, service=service, version=name, clusters=clusters)

    @rpc
    @retry_deadlocks()
    def rollback(self, record_id, actor, source_ip=None, idempotency_key=None):
        return self._once(actor, idempotency_key, lambda: self._rollback(record_id, actor, source_ip),
                          action="rollback", record_id=record_id)

    @rpc
    def preview_version(self, app, service, name, clusters):
        rendered = deploys.render_version(self.db, app, service, name, self._policy(app, clusters))
        shown = [redact.desired(m) for m in rendered]  # Secret values never appear in a preview
        live = [self.cluster.live_objects(c["name"], app, rendered) for c in clusters]
        return {"manifests": shown, "diff": deploys.preview_diffs(shown, len(rendered), clusters, live)}

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

    # -- events --------------------------------------------------------------------------
    @handle_event("org", "application_deleted")
    def on_application_deleted(self, event):
        """Nothing of a deleted app reaches a later app of the same name (domain/lifecycle.py)."""
        if not first_delivery(self.db, ProcessedEvent, event):
            return
        data = event.get("data") or {}
        counts = lifecycle.forget_deleted_app(self.db, data, event.get("occurred_at"))
        self.db.commit()
        log.info("application %s deleted: %s", data.get("name"), counts)

    @batch_handler([("cluster", "apply_result"), ("cluster", "resource_status")],
                   queue="deploy-cluster-status", size=STATUS_BATCH, wait=BATCH_WAIT, weigh=weigh_by("reports"))
    def on_cluster_status(self, events):
        """Apply results and runtime reports → target and record state (idempotent by the rules in
        ``domain.status``: a redelivered or stale one changes nothing)."""
        self._say(records.ingest(self.db, events))

    @batch_handler([("cluster", "log"), ("deploy", "log")], queue="deploy-log-lines",
                   size=LOG_BATCH, wait=BATCH_WAIT, weigh=weigh_by("lines"), depth=2)
    def on_log_lines(self, events):
        """One multi-row INSERT per batch; each line's id comes from its event, so redeliveries add nothing."""
        rows = records.log_rows(events)
        if rows:
            records.store_log_lines(self.db.connection(), rows)

    @timer(interval=1)
    def sweep(self):
        """The clock of the level-triggered rules; one replica at a time does it."""
        if not self._sweep_turn():
            return
        self._say(records.sweep(self.db, utcnow(), **settings.sweep_settings(self.config)))
        request_keys.forget_expired(self.db, utcnow())

    # -- CI hand-off (domain/ci_builds.py) ----------------------------------------------
    @rpc
    def link_ci(self, app, service, data, actor, source_ip=None):
        link, action, details = ci_links.link_service(self.db, self.secrets, app, service, data, actor["username"],
                                                      guard=self.outbound)
        self._audit(actor, action, f"app:{app}/service:{service}", details, source_ip)
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
        self._audit(actor, "ci_unlinked", f"app:{app}/service:{service}",
                    {**ci_links.changes(link), "link_id": link.id}, source_ip)

    @rpc
    def list_builds(self, app, service):
        return {"items": ci_links.builds(self.db, self.secrets, app, service, guard=self.outbound)}

    @rpc
    def trigger_build(self, app, service, ref):
        return ci_links.trigger_build(self.db, self.secrets, app, service, ref, guard=self.outbound)

    @rpc
    def ci_webhook(self, provider, headers, body, path, link_id=None):
        """A CI's signed webhook at one link's address; a finished tag build of the link's
        repository becomes a version of its service (and a deploy, if the link says so)."""
        result, link, build, row = ci_builds.receive(self.db, self.secrets, provider, headers, body, path, link_id)
        if result == "recorded":
            self._build_finished(link, build, row)
        return {"result": result}
