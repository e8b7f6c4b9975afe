"""The deploy service's ingress entrypoints (mixed into ``DeployService``; nameko finds
inherited entrypoints). Thin: the lifecycle is ``domain/ingresses.py``."""
from __future__ import annotations

from services.deploy.domain import catalog, deploys, ingresses
from shared.service import rpc


class IngressEntrypoints:
    """Uses the service's ``db`` and ``DeployHelpers`` (``_policy``, ``_once``, ``_say``,
    ``_audit``, ``_recorded``)."""

    @rpc
    def create_ingress(self, app, data, actor, source_ip=None):
        ingress = ingresses.create(self.db, app, data, actor["username"], self._policy(app),
                                   bool(actor.get("is_admin")))
        self._audit(actor, "ingress_created", f"app:{app}/ingress:{ingress.name}",
                    {"hosts": sorted(ingresses.hosts_of(ingress.config))}, source_ip)
        return catalog.ingress_dict(ingress)

    @rpc
    def list_ingresses(self, app, limit=None, cursor=None):
        return catalog.list_ingresses(self.db, app, limit, cursor)

    @rpc
    def get_ingress(self, app, name):
        return {**catalog.ingress_dict(catalog.get_ingress(self.db, app, name)),
                "clusters": [{"name": c["name"], "env": c["env"]}
                             for c in ingresses.deployed_clusters(self.db, app, name)]}

    @rpc
    def update_ingress(self, app, name, data, actor, source_ip=None):
        """Stored and checked, not deployed: a deploy brings the change to the clusters."""
        ingress, changes = ingresses.update(self.db, app, name, data, self._policy(app), bool(actor.get("is_admin")))
        self._audit(actor, "ingress_updated", f"app:{app}/ingress:{name}", changes, source_ip)
        return catalog.ingress_dict(ingress)

    @rpc
    def ingress_clusters(self, app, name, deployed=True):
        """Where a delete would go (``deployed``), or where the ingress's services run (where
        a deploy goes when not told): ``[{"name", "env"}]`` (the gateway checks the role per env)."""
        if not deployed:
            return ingresses.service_clusters(self.db, app, name)
        catalog.get_ingress(self.db, app, name)
        return [{"name": c["name"], "env": c["env"]} for c in ingresses.deployed_clusters(self.db, app, name)]

    @rpc
    def delete_ingress(self, app, name, actor, source_ip=None):
        record, clusters, outbox, freed = ingresses.delete(self.db, app, name, actor["username"])
        self._say(outbox)
        self._audit(actor, "ingress_deleted", f"app:{app}/ingress:{name}",
                    {"record_id": record and record.id, "clusters": deploys.cluster_names(clusters),
                     "hosts_freed": freed}, source_ip)
        return {"record_id": record and record.id}

    @rpc
    def deploy_ingress(self, app, name, clusters, actor, source_ip=None, idempotency_key=None):
        """``clusters``: ``[{"name", "env"}]``, resolved (and authorised) by the caller."""
        def create():
            record, outbox, freed = ingresses.deploy(self.db, app, name, clusters, actor["username"],
                                                     self._policy(app, clusters))
            return self._recorded(record, outbox, actor, "deploy", f"app:{app}/ingress:{name}",
                                  {"clusters": deploys.cluster_names(clusters), "hosts_freed": freed}, source_ip)
        return self._once(actor, idempotency_key, create, action="deploy", app=app, ingress=name, clusters=clusters)
