"""The deploy service's entrypoints for shipping a version to users (``domain/shipping.py``):
route a service's traffic, restart, scale and retire a version, and a CI link's ``auto_route``.

Mixed into ``DeployService``; each request that makes a record takes an ``Idempotency-Key``
like a deploy does, and is audited with the record it made.
"""
from __future__ import annotations

import logging

from sqlalchemy import select

from services.deploy.domain import ci_builds, deploys, shipping
from services.deploy.models import CIBuild, CILink, ProcessedEvent
from shared.errors import MaeError
from shared.events import handle_event
from shared.processed_events import first_delivery
from shared.service import rpc
from shared.timeutil import utcnow

log = logging.getLogger(__name__)


class ShippingEntrypoints:
    """Uses the service's ``db``, ``_once``, ``_policy``, ``_recorded`` (helpers.DeployHelpers)."""

    @rpc
    def routed(self, app, service):
        """Per cluster, the version that gets the service's traffic (None: routing stopped there)."""
        return shipping.routed(self.db, app, service)

    @rpc
    def route_service(self, app, service, version, clusters, actor, source_ip=None, idempotency_key=None):
        """``version`` gets the service's traffic on ``clusters`` (``None``: stop routing there)."""
        return self._once(actor, idempotency_key, lambda: self._route(app, service, version, clusters, actor,
                                                                      source_ip),
                          action="route", app=app, service=service, version=version, clusters=clusters)

    @rpc
    def restart_version(self, app, service, name, clusters, actor, source_ip=None, idempotency_key=None,
                        strict=True):
        def create():
            record, reached, outbox = shipping.restart(self.db, app, service, name, clusters, actor["username"],
                                                       utcnow(), strict)
            return self._recorded(record, outbox, actor, "version_restarted", self._target(app, service, name),
                                  {"clusters": deploys.cluster_names(reached)}, source_ip)
        return self._once(actor, idempotency_key, create, action="restart", app=app, service=service, version=name,
                          clusters=clusters)

    @rpc
    def scale_version(self, app, service, name, replicas, clusters, actor, source_ip=None, idempotency_key=None,
                      strict=True):
        def create():
            record, reached, outbox = shipping.scale(self.db, app, service, name, clusters, replicas,
                                                     actor["username"], strict)
            return self._recorded(record, outbox, actor, "version_scaled", self._target(app, service, name),
                                  {"clusters": deploys.cluster_names(reached), "replicas": replicas}, source_ip)
        return self._once(actor, idempotency_key, create, action="scale", app=app, service=service, version=name,
                          replicas=replicas, clusters=clusters)

    @rpc
    def retire_version(self, app, service, name, clusters, actor, source_ip=None, idempotency_key=None,
                       strict=True):
        def create():
            record, reached, outbox = shipping.retire(self.db, app, service, name, clusters, actor["username"],
                                                      strict)
            return self._recorded(record, outbox, actor, "version_retired", self._target(app, service, name),
                                  {"clusters": deploys.cluster_names(reached)}, source_ip)
        return self._once(actor, idempotency_key, create, action="retire", app=app, service=service, version=name,
                          clusters=clusters)

    @handle_event("deploy", "succeeded")
    def on_record_succeeded(self, event):
        """A CI link with ``auto_route``: once the automatic deploy of one of its builds
        succeeded, route the service to that version where it succeeded."""
        data = event.get("data") or {}
        # Only deploys a CI build made (its actor is ``ci:<provider>``) can be auto-routed: every
        # other record's notice is passed over without a query or a processed-event row.
        if data.get("action") != "deploy" or not data.get("version") \
                or not str(data.get("created_by") or "").startswith(ci_builds.CI_ACTOR_PREFIX):
            return
        if not first_delivery(self.db, ProcessedEvent, event):
            return
        found = self.db.execute(select(CILink).join(CIBuild, CIBuild.link_id == CILink.id)
                                .where(CIBuild.record_id == data.get("record_id"))).scalars().first()
        if found is None or not found.auto_route:
            self.db.commit()
            return
        clusters = [{"name": t["cluster"], "env": t.get("env")} for t in data.get("targets") or []
                    if t.get("status") == "succeeded"]
        try:
            answer = self._route(data["app"], data["service"], data["version"], clusters,
                                 ci_builds.ci_actor(found), None)
        except MaeError as exc:  # e.g. the version was deleted meanwhile: nothing to route, say why
            self.db.rollback()
            log.warning("auto-route of %s/%s to %s refused: %s", data["app"], data["service"], data["version"],
                        exc, extra={"deploy_record_id": data.get("record_id")})
            first_delivery(self.db, ProcessedEvent, event)
            self.db.commit()
            return
        self.db.commit()
        log.info("auto-routed %s/%s to %s", data["app"], data["service"], data["version"],
                 extra={"record_id": answer["record_id"], "deploy_record_id": data.get("record_id")})

    # -- not entrypoints ---------------------------------------------------------------
    @staticmethod
    def _target(app, service, name) -> str:
        return f"app:{app}/service:{service}/version:{name}"

    def _route(self, app, service, version, clusters, actor, source_ip) -> dict:
        record, outbox = shipping.route(self.db, app, service, version, clusters, actor["username"],
                                        self._policy(app, clusters))
        return self._recorded(record, outbox, actor, "service_routed", f"app:{app}/service:{service}",
                              {"version": version, "clusters": deploys.cluster_names(clusters)}, source_ip)
