"""Shipping a version to users: route a service's traffic, restart, scale and retire a version.

Each makes a deploy record (202 ``{"record_id"}``, an ``Idempotency-Key`` like a deploy) and
needs the role a deploy to those clusters needs: developer on test, maintainer on prod.
With ``env`` the request reaches the clusters of that environment where the version runs;
named ``clusters`` must all qualify.
"""
from __future__ import annotations

from gateway.auth import require_app_role
from gateway.routes.deploy_schemas import ACCEPTED, IDEMPOTENCY_KEY, TAGS
from gateway.routes.deploys import once
from gateway.schemas import LABEL, obj
from shared.errors import Invalid
from shared.names import is_label
from shared.web import read_object, route

WHERE = {"clusters": {"type": "array", "items": LABEL, "minItems": 1},
         "env": {"type": "string", "enum": ["test", "prod"]}}
ROUTE_BODY = obj(["version"], version={"type": ["string", "null"], "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                                       "maxLength": 63}, **WHERE)
SCALE_BODY = obj(["replicas"], replicas={"type": "integer", "minimum": 0, "maximum": 50}, **WHERE)
WHERE_BODY = obj([], **WHERE)
ERRORS = [400, 401, 403, 404, 409, 422, 503]


class ShippingRoutes:
    def _reach(self, request, app: str) -> tuple:
        """The caller, the clusters the body names (checked against the caller's role) and
        whether they were named one by one (``strict``) rather than by environment."""
        caller, role = require_app_role(self, request, app, "deploy.test")
        body = read_object(request)
        if "clusters" not in body and "env" not in body:
            raise Invalid("Say where: 'env' (test or prod) or 'clusters' (names).", {"field": "env"})
        clusters = self._resolve_clusters(body)
        self._check_envs(role, app, clusters)
        return caller, body, clusters, "clusters" in body

    @route("POST", "/api/v1/apps/<app>/services/<svc>/route",
           summary="Send the service's traffic to a version on clusters (version null: stop routing there)",
           tags=TAGS, auth=True, body=ROUTE_BODY, responses=ACCEPTED, errors=ERRORS, query=IDEMPOTENCY_KEY)
    def route_service(self, request, app, svc):
        caller, body, clusters, _ = self._reach(request, app)
        if "version" not in body:
            raise Invalid("'version' is required: the version that gets the traffic (null stops routing).",
                          {"field": "version"})
        version = body["version"]
        if version is not None and not (isinstance(version, str) and is_label(version)):
            raise Invalid("'version' must be a version's name or null.", {"field": "version"})
        return once(self.deploy.route_service(app, svc, version, clusters, caller.actor, caller.source_ip,
                                              idempotency_key=request.headers.get("Idempotency-Key")))

    @route("POST", "/api/v1/apps/<app>/services/<svc>/versions/<ver>/restart",
           summary="Restart a version's pods, rolling (like kubectl rollout restart)", tags=TAGS, auth=True,
           body=WHERE_BODY, responses=ACCEPTED, errors=ERRORS, query=IDEMPOTENCY_KEY)
    def restart_version(self, request, app, svc, ver):
        caller, _, clusters, strict = self._reach(request, app)
        return once(self.deploy.restart_version(app, svc, ver, clusters, caller.actor, caller.source_ip,
                                                idempotency_key=request.headers.get("Idempotency-Key"),
                                                strict=strict))

    @route("POST", "/api/v1/apps/<app>/services/<svc>/versions/<ver>/scale",
           summary="Set how many pods a version runs on clusters", tags=TAGS, auth=True, body=SCALE_BODY,
           responses=ACCEPTED, errors=ERRORS, query=IDEMPOTENCY_KEY)
    def scale_version(self, request, app, svc, ver):
        caller, body, clusters, strict = self._reach(request, app)
        return once(self.deploy.scale_version(app, svc, ver, body.get("replicas"), clusters, caller.actor,
                                              caller.source_ip,
                                              idempotency_key=request.headers.get("Idempotency-Key"),
                                              strict=strict))

    @route("POST", "/api/v1/apps/<app>/services/<svc>/versions/<ver>/retire",
           summary="Remove a version's objects from clusters (409 version_routed while it gets traffic)",
           tags=TAGS, auth=True, body=WHERE_BODY, responses=ACCEPTED, errors=ERRORS, query=IDEMPOTENCY_KEY)
    def retire_version(self, request, app, svc, ver):
        caller, _, clusters, strict = self._reach(request, app)
        return once(self.deploy.retire_version(app, svc, ver, clusters, caller.actor, caller.source_ip,
                                               idempotency_key=request.headers.get("Idempotency-Key"),
                                               strict=strict))
