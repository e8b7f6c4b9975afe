"""Services, versions, deploys, records and their logs (ingresses: ingresses.py, templates: templates.py).

Who may deploy depends on where: the clusters a deploy (or rollback, or
delete) reaches are resolved here first, then the role is checked against
``deploy.test`` or ``deploy.prod`` for the strictest env among them.
"""
from __future__ import annotations

from gateway.auth import authenticate, require_app_role
from gateway.rbac import allowed
from gateway.routes.deploy_schemas import (
    ACCEPTED, ANY_OBJ, DEPLOY_BODY, IDEMPOTENCY_KEY, INT,
    LOG_LINE, RECORD, RECORD_QUERY, SERVICE, SERVICE_BODY, TAGS,
    VERSION, VERSION_BODY)
from gateway.schemas import LABEL, PAGING, json_response, obj, page_of
from shared.errors import Forbidden, Invalid, NotFound
from shared.names import is_label
from shared.web import read_object, route


def once(answer: dict):
    """202 with the record, saying so in a header when it is the answer to an earlier request."""
    if answer.get("replayed"):
        return 202, {"Idempotent-Replayed": "true"}, answer
    return 202, answer


def shown_to(role: str, version: dict) -> dict:
    """A version as ``role`` may see it: a viewer sees which variables it sets, not their
    values (a value may be a credential someone put in plain ``env``); the same fields and
    shapes otherwise. ``secret_env`` is names only for everyone."""
    if role != "viewer" or not isinstance(version, dict) or not isinstance(version.get("env"), list):
        return version
    return {**version, "env": [{"name": item.get("name"), "value": None} for item in version["env"]
                               if isinstance(item, dict)]}


class DeployRoutes:
    # -- where a deploy goes, and whether the caller may send it there -----------------
    def _resolve_clusters(self, body: dict) -> list[dict]:
        """``{"clusters": [names]}`` or ``{"env": "test"|"prod"}`` → ``[{"name", "env"}]``."""
        if "clusters" in body and "env" in body:
            raise Invalid("Give either 'clusters' or 'env', not both.", {"field": "clusters"})
        if "env" in body:
            env = body["env"]
            if env not in ("test", "prod"):
                raise Invalid("'env' must be 'test' or 'prod'.", {"field": "env"})
            found = [{"name": c["name"], "env": c["env"]} for c in self.cluster.list_clusters(env)]
            if not found:
                raise Invalid(f"There is no {env} cluster to deploy to.", {"field": "env"})
            return found
        names = body.get("clusters")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise Invalid("'clusters' must be a non-empty list of cluster names (or give 'env').",
                          {"field": "clusters"})
        known = {c["name"]: c["env"] for c in self.cluster.list_clusters(None)}
        missing = [n for n in names if n not in known]
        if missing:
            raise Invalid(f"No such cluster: {', '.join(missing)}.", {"field": "clusters", "clusters": missing})
        if len(set(names)) != len(names):
            raise Invalid("A cluster is named twice.", {"field": "clusters"})
        return [{"name": n, "env": known[n]} for n in names]

    @staticmethod
    def _check_envs(role: str, app: str, clusters: list[dict]) -> None:
        endpoint = "deploy.prod" if any(c.get("env") == "prod" for c in clusters) else "deploy.test"
        if not allowed(endpoint, role):
            where = "production" if endpoint == "deploy.prod" else "test"
            raise Forbidden(f"Your role in {app!r} ({role}) does not allow changes on {where} clusters.",
                            {"app": app, "role": role})

    def _record_for(self, request, record_id: int, endpoint: str):
        """The record, if the caller may see its application (404 otherwise, as for apps)."""
        caller = authenticate(self, request)
        try:
            record = self.deploy.get_record(record_id)
        except NotFound:
            raise NotFound(f"Deploy record {record_id} was not found.", {"record_id": record_id})
        try:
            caller, role = require_app_role(self, request, record["app"], endpoint)
        except NotFound:
            raise NotFound(f"Deploy record {record_id} was not found.", {"record_id": record_id})
        return caller, role, record

    # -- services ---------------------------------------------------------------------
    @route("POST", "/api/v1/apps/<app>/services", summary="Create a service", tags=TAGS, auth=True,
           body=SERVICE_BODY, responses=json_response(SERVICE, 201, "Created"),
           errors=[400, 401, 403, 404, 409, 422])
    def create_service(self, request, app):
        caller, _ = require_app_role(self, request, app, "services.create")
        return 201, self.deploy.create_service(app, read_object(request), caller.actor)

    @route("GET", "/api/v1/apps/<app>/services", summary="The application's services", tags=TAGS, auth=True,
           query=PAGING, responses=json_response(page_of(SERVICE)), errors=[401, 404, 422])
    def list_services(self, request, app):
        require_app_role(self, request, app, "services.list")
        return self.deploy.list_services(app, request.args.get("limit"), request.args.get("cursor"))

    @route("GET", "/api/v1/apps/<app>/services/<svc>", summary="A service, with each version's status per cluster",
           tags=TAGS, auth=True, responses=json_response(SERVICE), errors=[401, 404])
    def get_service(self, request, app, svc):
        _, role = require_app_role(self, request, app, "services.get")
        service = self.deploy.get_service(app, svc)
        return {**service, "versions": [shown_to(role, v) for v in service.get("versions") or []]}

    @route("DELETE", "/api/v1/apps/<app>/services/<svc>", summary="Delete a service without versions",
           tags=TAGS, auth=True, responses={204: {"description": "Deleted"}}, errors=[401, 403, 404, 409])
    def delete_service(self, request, app, svc):
        caller, _ = require_app_role(self, request, app, "services.delete")
        self.deploy.delete_service(app, svc, caller.actor, caller.source_ip)
        return 204, None

    # -- versions ---------------------------------------------------------------------
    @route("POST", "/api/v1/apps/<app>/services/<svc>/versions", summary="Create a version (checked config)",
           tags=TAGS, auth=True, body=obj(["name", "image", "port"], **VERSION_BODY),
           responses=json_response(VERSION, 201, "Created"), errors=[400, 401, 403, 404, 409, 422])
    def create_version(self, request, app, svc):
        caller, role = require_app_role(self, request, app, "versions.create")
        return 201, shown_to(role, self.deploy.create_version(app, svc, read_object(request), caller.actor,
                                                              caller.source_ip))

    @route("GET", "/api/v1/apps/<app>/services/<svc>/versions", summary="The service's versions", tags=TAGS,
           auth=True, query=PAGING, responses=json_response(page_of(VERSION)), errors=[401, 404, 422])
    def list_versions(self, request, app, svc):
        _, role = require_app_role(self, request, app, "versions.list")
        found = self.deploy.list_versions(app, svc, request.args.get("limit"), request.args.get("cursor"))
        return {**found, "items": [shown_to(role, v) for v in found.get("items") or []]}

    @route("GET", "/api/v1/apps/<app>/services/<svc>/versions/<ver>", summary="A version and where it runs",
           tags=TAGS, auth=True, responses=json_response(VERSION), errors=[401, 404])
    def get_version(self, request, app, svc, ver):
        _, role = require_app_role(self, request, app, "versions.get")
        return shown_to(role, self.deploy.get_version(app, svc, ver))

    @route("PATCH", "/api/v1/apps/<app>/services/<svc>/versions/<ver>", summary="Change a version's config",
           tags=TAGS, auth=True, body=obj([], **{k: v for k, v in VERSION_BODY.items() if k != "name"}),
           responses=json_response(VERSION), errors=[400, 401, 403, 404, 422])
    def update_version(self, request, app, svc, ver):
        caller, role = require_app_role(self, request, app, "versions.update")
        return shown_to(role, self.deploy.update_version(app, svc, ver, read_object(request), caller.actor,
                                                         caller.source_ip))

    @route("DELETE", "/api/v1/apps/<app>/services/<svc>/versions/<ver>",
           summary="Delete a version; a delete record removes it from the clusters it ran on", tags=TAGS,
           auth=True, responses=json_response(obj(["record_id"], record_id={"type": ["integer", "null"]}),
                                              202, "Accepted"), errors=[401, 403, 404])
    def delete_version(self, request, app, svc, ver):
        caller, role = require_app_role(self, request, app, "versions.delete")
        self._check_envs(role, app, self.deploy.version_clusters(app, svc, ver))
        return 202, self.deploy.delete_version(app, svc, ver, caller.actor, caller.source_ip)

    @route("POST", "/api/v1/apps/<app>/services/<svc>/versions/<ver>/deploy",
           summary="Deploy a version to named clusters or to every cluster of an env", tags=TAGS, auth=True,
           body=DEPLOY_BODY, responses=ACCEPTED, errors=[400, 401, 403, 404, 409, 422, 503], query=IDEMPOTENCY_KEY)
    def deploy_version(self, request, app, svc, ver):
        caller, role = require_app_role(self, request, app, "deploy.test")
        clusters = self._resolve_clusters(read_object(request))
        self._check_envs(role, app, clusters)
        return once(self.deploy.deploy_version(app, svc, ver, clusters, caller.actor, caller.source_ip,
                                               idempotency_key=request.headers.get("Idempotency-Key")))

    @route("POST", "/api/v1/apps/<app>/services/<svc>/versions/<ver>/preview",
           summary="What a deploy would apply, and its diff against what each cluster runs now", tags=TAGS,
           auth=True, body=obj([], clusters={"type": "array", "items": LABEL}),
           responses=json_response(obj(["manifests", "diff"], manifests={"type": "array", "items": ANY_OBJ},
                                       diff={"type": "array", "items": ANY_OBJ})),
           errors=[400, 401, 403, 404, 422, 503])
    def preview_version(self, request, app, svc, ver):
        _, role = require_app_role(self, request, app, "versions.preview")
        body = read_object(request, required=False)
        if body.get("clusters") or body.get("env"):
            clusters = self._resolve_clusters(body)
            # what a production cluster runs is for those who may deploy there
            self._check_envs(role, app, clusters)
        else:  # every cluster the caller's role may deploy to
            prod = allowed("deploy.prod", role)
            clusters = [{"name": c["name"], "env": c["env"]} for c in self.cluster.list_clusters(None)
                        if prod or c["env"] != "prod"]
        return self.deploy.preview_version(app, svc, ver, clusters)

    # -- records --------------------------------------------------------------------------
    @route("GET", "/api/v1/records/<int:record_id>", summary="A deploy record with each target's status",
           tags=TAGS, auth=True, responses=json_response(RECORD), errors=[401, 404])
    def get_record(self, request, record_id):
        _, _, record = self._record_for(request, record_id, "records.read")
        return record

    @route("GET", "/api/v1/records/<int:record_id>/logs", summary="A record's log, after a seq", tags=TAGS,
           auth=True, query=[{"name": "after", "in": "query", "required": False, "schema": INT},
                             {"name": "limit", "in": "query", "required": False, "schema": INT}],
           responses=json_response(obj(["items", "next_after"], items={"type": "array", "items": LOG_LINE},
                                       next_after=INT)), errors=[401, 404, 422])
    def record_logs(self, request, record_id):
        self._record_for(request, record_id, "records.read")
        return self.deploy.record_logs(record_id, request.args.get("after"), request.args.get("limit"))

    @route("GET", "/api/v1/apps/<app>/records", summary="Deploy history, newest first", tags=TAGS, auth=True,
           query=RECORD_QUERY, responses=json_response(page_of(RECORD)), errors=[401, 404, 422])
    def list_records(self, request, app):
        require_app_role(self, request, app, "records.read")
        args = request.args
        filters = {}
        for name in ("service", "version"):
            value = args.get(name) or None
            if value is not None and not is_label(value):
                raise Invalid(f"'{name}' must be a {name} name (an RFC 1123 label).", {"field": name})
            filters[name] = value
        return self.deploy.list_records(app, filters["service"], filters["version"],
                                        args.get("limit"), args.get("cursor"))

    @route("POST", "/api/v1/records/<int:record_id>/rollback",
           summary="Re-apply the manifests of a succeeded record (a new record)", tags=TAGS, auth=True,
           responses=ACCEPTED, errors=[401, 403, 404, 409, 422], query=IDEMPOTENCY_KEY)
    def rollback(self, request, record_id):
        caller, role, record = self._record_for(request, record_id, "deploy.test")
        self._check_envs(role, record["app"], record["targets"])
        return once(self.deploy.rollback(record_id, caller.actor, caller.source_ip,
                                         idempotency_key=request.headers.get("Idempotency-Key")))
