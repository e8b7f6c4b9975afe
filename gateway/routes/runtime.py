"""What runs: a version's pods, resource tree and logs, an application's Kubernetes events.

The gateway holds no cluster credentials. Pods and events come over RPC from the
cluster service; a log is a ticket over RPC (``log_ticket``: bound to the cluster,
namespace, pods and parameters, single use, 30 s) and then a stream read from the
cluster service's internal ``GET /internal/logs`` (``CLUSTER_INTERNAL_URLS``, tried in
order) and relayed as it comes. Who may read: anyone with a role in the app sees pods
and events; logs of pods on a ``prod`` cluster need ``logs.prod`` (developer), since
what a program prints there may be its users' data.
"""
from __future__ import annotations

import logging

import requests

from gateway.auth import require_app_role
from gateway.rbac import allowed
from gateway.schemas import LABEL, json_response, obj
from shared.errors import Forbidden, Invalid, NotFound, Unavailable
from shared.names import is_label
from shared.web import route, streamed

log = logging.getLogger(__name__)

TAGS = ["runtime"]
STR, INT = {"type": "string"}, {"type": "integer"}
NSTR = {"type": ["string", "null"]}
POD = obj(["cluster", "name", "phase", "ready", "restarts", "reason", "started_at"], cluster=STR, name=STR,
          phase=NSTR, ready={"type": "boolean"}, restarts=INT, reason=NSTR, started_at=NSTR, container=NSTR)
EVENT = obj(["cluster", "object", "type", "reason", "message", "count", "last_seen"], cluster=STR, object=STR,
            type={"type": "string", "enum": ["Normal", "Warning"]}, reason=NSTR, message=NSTR, count=INT,
            last_seen=NSTR)
UNREACHABLE = {"type": "array", "items": STR}
BOOL = {"type": "boolean"}
# A version on one cluster: Deployment -> ReplicaSets (newest revision first) -> pods.
CONDITION = obj(["type", "status", "reason", "message"], type=STR, status=NSTR, reason=NSTR, message=NSTR)
DEPLOYMENT = obj(["name", "generation", "observed_generation", "replicas", "conditions"], name=STR,
                 generation=INT, observed_generation=INT,
                 replicas=obj(["desired", "updated", "ready", "available"], desired=INT, updated=INT, ready=INT,
                              available=INT),
                 conditions={"type": "array", "items": CONDITION})
TREE_POD = obj(["name", "phase", "ready", "restarts", "created_at"], name=STR, phase=NSTR, ready=BOOL, restarts=INT,
               reason=NSTR, node=NSTR, created_at=NSTR)
REPLICASET = obj(["name", "revision", "replicas", "created_at", "current", "pods"], name=STR, revision=INT,
                 replicas=obj(["desired", "ready", "available"], desired=INT, ready=INT, available=INT),
                 created_at=NSTR, current=BOOL, pods={"type": "array", "items": TREE_POD})
RESOURCES = obj(["items"], items={"type": "array", "items": obj(
    ["cluster", "env", "reachable", "deployment", "replicasets"], cluster=STR, env=NSTR, reachable=BOOL,
    error={"type": "string", "description": "Why the cluster could not be read (reachable: false)"},
    deployment={"anyOf": [{"type": "null"}, DEPLOYMENT]}, replicasets={"type": "array", "items": REPLICASET})})


def _items(item: dict) -> dict:
    return obj(["items"], items={"type": "array", "items": item}, unreachable=UNREACHABLE,
               next_cursor={"type": ["string", "null"]})


def _q(name: str, schema: dict) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema}


OPTIONAL_LABEL = {"anyOf": [LABEL, {"const": ""}]}
LOG_QUERY = [_q("cluster", OPTIONAL_LABEL), _q("pod", {"type": "string", "maxLength": 253}),
             _q("tail", {"type": "integer", "minimum": 1, "maximum": 10000}),
             _q("since_seconds", {"type": "integer", "minimum": 1}), _q("follow", {"type": "string", "enum": ["0", "1"]})]
TEXT = {200: {"description": "One line per log line, each prefixed with its pod's name and a space",
              "content": {"text/plain": {"schema": {"type": "string"}}}}}
CHUNK = 64 * 1024


def _label_arg(request, name: str) -> str | None:
    """An optional name argument: absent or empty is None; anything else must be a label."""
    value = request.args.get(name) or None
    if value is not None and not is_label(value):
        raise Invalid(f"'{name}' must be a name (an RFC 1123 label).", {"field": name})
    return value


class RuntimeRoutes:
    def _version_clusters(self, app: str, svc: str, ver: str, cluster: str | None) -> list[dict]:
        """The clusters the version runs on (``[{"name", "env"}]``), or just ``cluster`` (404 if not one)."""
        where = self.deploy.version_clusters(app, svc, ver)
        if cluster is None:
            return where
        chosen = [c for c in where if c["name"] == cluster]
        if not chosen:
            raise NotFound(f"Version {ver!r} does not run on a cluster called {cluster!r}.",
                           {"cluster": cluster, "clusters": [c["name"] for c in where]})
        return chosen

    @route("GET", "/api/v1/apps/<app>/services/<svc>/versions/<ver>/pods", summary="The version's pods",
           tags=TAGS, auth=True, query=[_q("cluster", OPTIONAL_LABEL)], responses=json_response(_items(POD)),
           errors=[401, 404, 422, 503])
    def version_pods(self, request, app, svc, ver):
        require_app_role(self, request, app, "pods.list")
        cluster = _label_arg(request, "cluster")
        where = self._version_clusters(app, svc, ver, cluster)
        return self.cluster.version_pods(app, svc, ver, [c["name"] for c in where], strict=cluster is not None)

    @route("GET", "/api/v1/apps/<app>/services/<svc>/versions/<ver>/resources",
           summary="The version's Deployment, ReplicaSets and pods on each cluster, as a tree", tags=TAGS,
           auth=True, query=[_q("cluster", OPTIONAL_LABEL)], responses=json_response(RESOURCES),
           errors=[401, 404, 422, 503])
    def version_resources(self, request, app, svc, ver):
        """A cluster that cannot be read is an item with ``reachable: false`` and an ``error``."""
        require_app_role(self, request, app, "pods.list")
        where = self._version_clusters(app, svc, ver, _label_arg(request, "cluster"))
        return self.cluster.version_resources(app, svc, ver, [{"name": c["name"], "env": c.get("env")}
                                                              for c in where])

    @route("GET", "/api/v1/apps/<app>/events", summary="Kubernetes events of the application's objects",
           tags=TAGS, auth=True, query=[_q(n, OPTIONAL_LABEL) for n in ("cluster", "service", "version")],
           responses=json_response(_items(EVENT)), errors=[401, 404, 422, 503])
    def app_events(self, request, app):
        require_app_role(self, request, app, "events.list")
        return self.cluster.app_events(app, _label_arg(request, "cluster"), _label_arg(request, "service"),
                                       _label_arg(request, "version"))

    @route("GET", "/api/v1/apps/<app>/services/<svc>/versions/<ver>/logs",
           summary="The version's pod logs (streamed with follow=1)", tags=TAGS, auth=True, query=LOG_QUERY,
           responses=TEXT, errors=[401, 403, 404, 422, 503])
    def version_logs(self, request, app, svc, ver):
        _, role = require_app_role(self, request, app, "logs.test")
        where = self._version_clusters(app, svc, ver, _label_arg(request, "cluster"))
        if not where:
            raise NotFound(f"Version {ver!r} has not been deployed to any cluster.", {"version": ver})
        if len(where) > 1:
            raise Invalid("Name the cluster to read logs from ('cluster').",
                          {"field": "cluster", "clusters": [c["name"] for c in where]})
        cluster = where[0]
        endpoint = "logs.prod" if cluster["env"] == "prod" else "logs.test"
        if not allowed(endpoint, role):
            raise Forbidden(f"Your role in {app!r} ({role}) does not allow reading logs on production clusters.",
                            {"app": app, "role": role, "cluster": cluster["name"]})
        args = request.args
        grant = self.cluster.log_ticket(app, svc, ver, cluster["name"], args.get("pod") or None, args.get("tail"),
                                        args.get("since_seconds"), args.get("follow"))
        upstream = self._open_log(grant["ticket"])
        if upstream.status_code == 401:  # the ticket outlived its 30 s on the way: nothing the caller did
            upstream.close()
            raise Unavailable("The log could not be opened in time; try again.", {"service": "cluster"})
        if upstream.status_code != 200:  # the cluster service's own error answer (503: the cluster is down)
            body = upstream.content
            upstream.close()
            return upstream.status_code, {"Content-Type": "application/json"}, body.decode(errors="replace")
        return streamed(request, _relay(upstream))

    def _open_log(self, ticket: str):
        urls = [u.strip() for u in str(self.config.get("CLUSTER_INTERNAL_URLS") or "").split(",") if u.strip()]
        for url in urls:
            try:
                return requests.get(f"{url.rstrip('/')}/internal/logs", headers={"X-MAE-Log-Ticket": ticket},
                                    stream=True, timeout=(5, None))
            except requests.RequestException as exc:
                log.warning("cluster service's log endpoint %s did not answer: %s", url, exc)
        raise Unavailable("The cluster service's log endpoint cannot be reached right now.", {"service": "cluster"})


def _relay(upstream):
    """The cluster service's stream, chunk by chunk as it arrives; closing it (the client left) closes upstream."""
    try:
        for chunk in upstream.raw.stream(CHUNK, decode_content=False):
            if chunk:
                yield chunk
    except Exception as exc:  # requests', urllib3's or the socket's: the stream ended early
        log.info("log stream from the cluster service ended: %s", exc)
    finally:
        upstream.close()
