"""Ingresses: made, read, changed, deployed, deleted (services/deploy/domain/ingresses.py).

A change (PATCH) is stored, not deployed: deploy the ingress again to bring it to the
clusters. A deploy goes where the body says (``env`` or ``clusters``) or, with neither,
to every registered cluster where the services its routes name run. A delete reaches
every cluster the ingress was last applied to. Deploys and deletes need the role a
deploy to those clusters needs (developer on test, maintainer on prod).
"""
from __future__ import annotations

from gateway.auth import require_app_role
from gateway.routes.deploy_schemas import (ACCEPTED, DEPLOY_BODY, IDEMPOTENCY_KEY, INGRESS, INGRESS_BODY,
                                           INGRESS_PATCH, TAGS)
from gateway.routes.deploys import once
from gateway.schemas import PAGING, json_response, obj, page_of
from shared.errors import Invalid
from shared.web import read_object, route

DELETED = json_response(obj(["record_id"], record_id={"type": ["integer", "null"]}), 202, "Accepted")
PATH = "/api/v1/apps/<app>/ingresses/<ing>"


class IngressRoutes:
    @route("POST", "/api/v1/apps/<app>/ingresses", summary="Create an ingress: a host (or one per env), optional "
           "TLS, routes", tags=TAGS, auth=True, body=INGRESS_BODY, responses=json_response(INGRESS, 201, "Created"),
           errors=[400, 401, 403, 404, 409, 422])
    def create_ingress(self, request, app):
        caller, _ = require_app_role(self, request, app, "ingresses.create")
        return 201, self.deploy.create_ingress(app, read_object(request), caller.actor, caller.source_ip)

    @route("GET", "/api/v1/apps/<app>/ingresses", summary="The application's ingresses", tags=TAGS, auth=True,
           query=PAGING, responses=json_response(page_of(INGRESS)), errors=[401, 404, 422])
    def list_ingresses(self, request, app):
        require_app_role(self, request, app, "ingresses.list")
        return self.deploy.list_ingresses(app, request.args.get("limit"), request.args.get("cursor"))

    @route("GET", PATH, summary="An ingress and the clusters it was last applied to", tags=TAGS, auth=True,
           responses=json_response(INGRESS), errors=[401, 404])
    def get_ingress(self, request, app, ing):
        require_app_role(self, request, app, "ingresses.get")
        return self.deploy.get_ingress(app, ing)

    @route("PATCH", PATH, summary="Change an ingress's host, hosts, tls or routes (stored, not deployed: deploy "
           "it again)", tags=TAGS, auth=True, body=INGRESS_PATCH, responses=json_response(INGRESS),
           errors=[400, 401, 403, 404, 409, 422])
    def update_ingress(self, request, app, ing):
        caller, _ = require_app_role(self, request, app, "ingresses.update")
        return self.deploy.update_ingress(app, ing, read_object(request), caller.actor, caller.source_ip)

    @route("DELETE", PATH, summary="Delete an ingress; a delete record removes it from every cluster it was "
           "applied to (record_id null: it was on none)", tags=TAGS, auth=True, responses=DELETED,
           errors=[401, 403, 404])
    def delete_ingress(self, request, app, ing):
        caller, role = require_app_role(self, request, app, "ingresses.delete")
        self._check_envs(role, app, self.deploy.ingress_clusters(app, ing))
        return 202, self.deploy.delete_ingress(app, ing, caller.actor, caller.source_ip)

    @route("POST", f"{PATH}/deploy", summary="Deploy an ingress (to env or clusters; neither: where its services "
           "run)", tags=TAGS, auth=True, body={"anyOf": [DEPLOY_BODY, obj([])]}, responses=ACCEPTED,
           errors=[400, 401, 403, 404, 409, 422, 503], query=IDEMPOTENCY_KEY)
    def deploy_ingress(self, request, app, ing):
        caller, role = require_app_role(self, request, app, "deploy.test")
        body = read_object(request, required=False)
        clusters = self._resolve_clusters(body) if "env" in body or "clusters" in body else \
            self._where_services_run(app, ing)
        self._check_envs(role, app, clusters)
        return once(self.deploy.deploy_ingress(app, ing, clusters, caller.actor, caller.source_ip,
                                               idempotency_key=request.headers.get("Idempotency-Key")))

    def _where_services_run(self, app: str, ing: str) -> list[dict]:
        """The registered clusters (with their env now) where the ingress's services run."""
        known = {c["name"]: c["env"] for c in self.cluster.list_clusters(None)}
        found = [{"name": c["name"], "env": known[c["name"]]}
                 for c in self.deploy.ingress_clusters(app, ing, deployed=False) if c["name"] in known]
        if not found:
            raise Invalid(f"No service that ingress {ing!r} routes to runs on a cluster yet; deploy them first, or "
                          "name 'env' or 'clusters'.", {"field": "clusters", "ingress": ing})
        return found
