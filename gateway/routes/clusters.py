"""Clusters: the registry (platform admins change it, any logged-in user reads it)
and the operators' report intake (authenticated by the cluster's report token,
never by a user token)."""
from __future__ import annotations

from gateway.auth import authenticate, require_admin, source_ip
from gateway.schemas import LABEL, json_response, obj
from shared.errors import BadRequest, Invalid, Unauthorized
from shared.names import is_label
from shared.web import read_object, route

TAGS = ["clusters"]
STR = {"type": "string"}
NULLABLE_STR = {"type": ["string", "null"]}
CLUSTER = obj(["name", "env", "server", "healthy", "last_report_at"], name=LABEL,
              env={"type": "string", "enum": ["test", "prod"]}, server=STR,
              healthy={"type": "boolean"}, reachable={"type": "boolean"},
              last_report_at=NULLABLE_STR, probe_error=NULLABLE_STR, probed_at=NULLABLE_STR,
              created_at=STR, unreachable_since=NULLABLE_STR, credentials_generation={"type": "integer"},
              namespaces=obj(["ok", "pending", "failed"], ok={"type": "integer"},
                             pending={"type": "array", "items": {"type": "object"}},
                             failed={"type": "array", "items": {"type": "object"}}))
NEW_CLUSTER = obj(["name", "env", "server", "report_token"], name=LABEL, env=STR, server=STR,
                  report_token={"type": "string", "description": "shown only here"})


class ClusterRoutes:
    @route("POST", "/api/v1/clusters", summary="Register a cluster (credentials are checked against it first)",
           tags=TAGS, auth=True,
           body=obj(["name", "env", "server", "ca_cert", "token"], name=LABEL,
                    env={"type": "string", "enum": ["test", "prod"]}, server=STR, ca_cert=STR, token=STR),
           responses=json_response(NEW_CLUSTER, 201, "Created"), errors=[400, 401, 403, 409, 422])
    def register_cluster(self, request):
        caller = require_admin(self, request)
        answer = self.cluster.register_cluster(read_object(request), caller.actor, caller.source_ip)
        return 201, answer

    @route("GET", "/api/v1/clusters", summary="Registered clusters and their health", tags=TAGS, auth=True,
           query=[{"name": "env", "in": "query", "required": False,
                   "schema": {"type": "string", "enum": ["test", "prod"]}}],
           responses=json_response(obj(["items", "next_cursor"], items={"type": "array", "items": CLUSTER},
                                       next_cursor=NULLABLE_STR)),
           errors=[401, 422])
    def list_clusters(self, request):
        authenticate(self, request)
        env = request.args.get("env")
        if env is not None and env not in ("test", "prod"):
            raise Invalid("'env' must be 'test' or 'prod'.", {"field": "env"})
        return {"items": self.cluster.list_clusters(env), "next_cursor": None}

    @route("GET", "/api/v1/clusters/<name>", summary="A cluster, its health and its namespaces", tags=TAGS,
           auth=True, responses=json_response(CLUSTER), errors=[401, 404])
    def get_cluster(self, request, name):
        authenticate(self, request)
        return self.cluster.get_cluster(name, detail=True)

    @route("DELETE", "/api/v1/clusters/<name>", summary="Forget a cluster (its namespaces stay on it)",
           tags=TAGS, auth=True, responses={204: {"description": "Deleted"}}, errors=[401, 403, 404])
    def delete_cluster(self, request, name):
        caller = require_admin(self, request)
        self.cluster.delete_cluster(name, caller.actor, caller.source_ip)
        return 204, None

    @route("POST", "/api/v1/clusters/<name>/credentials",
           summary="Replace the credentials MAE deploys with (checked against the cluster first; "
                   "the old ones stay if they do not work)", tags=TAGS, auth=True,
           body=obj(["token"], server=STR, ca_cert=STR, token=STR),
           responses=json_response(CLUSTER), errors=[400, 401, 403, 404, 422])
    def rotate_cluster_credentials(self, request, name):
        caller = require_admin(self, request)
        return self.cluster.rotate_credentials(name, read_object(request), caller.actor, caller.source_ip)

    @route("POST", "/api/v1/clusters/<name>/report-token",
           summary="A new report token for the cluster's operator (shown only here); the old one "
                   "keeps working for 10 minutes", tags=TAGS, auth=True,
           responses=json_response(obj(["report_token"], name=LABEL,
                                       report_token={"type": "string", "description": "shown only here"},
                                       previous_valid_until=STR)),
           errors=[401, 403, 404])
    def rotate_cluster_report_token(self, request, name):
        caller = require_admin(self, request)
        return self.cluster.rotate_report_token(name, caller.actor, caller.source_ip)

    @route("POST", "/api/v1/clusters/<name>/reports",
           summary="Operator status reports (auth: the cluster's report token)", tags=TAGS, auth=True,
           body=obj(["reports"], reports={"type": "array", "items": {"type": "object"}},
                    full_state={"type": "object"}),
           responses=json_response(obj(["accepted", "dropped"], accepted={"type": "integer"},
                                       dropped={"type": "integer"}), 202, "Stored"),
           errors=[400, 401, 413, 422])
    def post_reports(self, request, name):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if not is_label(name):  # 'PROD' would find 'prod' (MariaDB compares case-insensitively)
            raise Unauthorized(f"There is no cluster called {name!r} to report for.")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Send this cluster's report token: 'Authorization: Bearer <report_token>'.")
        # The body goes on as it came (the cluster service parses and checks it): parsing
        # it here and serialising it again for the RPC cost the gateway a third of its
        # CPU per POST, and the cluster decoded every report's dicts through kombu's
        # object hook; one JSON string crosses RPC for a fraction of that.
        try:
            raw = request.get_data(cache=True).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(f"The body is not valid JSON: {exc}.")
        answer = self.cluster.ingest_reports_body(name, token.strip(), raw)
        return 202, answer


__all__ = ["ClusterRoutes", "source_ip"]
