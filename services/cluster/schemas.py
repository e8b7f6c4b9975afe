"""Message shapes of the cluster service: what a registration and an operator report must
look like, and the events it publishes, each built by one function here.

Published (envelope from ``shared.events``, source ``cluster``; docs/contracts.md):

* ``apply_result`` — ``ApplyResult``: what an apply or delete asked by the deploy service did;
* ``registered`` — ``Registered``: a cluster was registered (its namespaces are made);
* ``resource_status`` — ``ResourceStatus``: operator reports, ``reports: [...]``;
* ``log`` — ``LogLines``: log lines of applies, ``lines: [...]``.
"""
from __future__ import annotations

from typing import TypedDict
from urllib.parse import urlsplit

from shared import reportorder
from shared.errors import Invalid
from shared.names import check_label

ENVS = ("test", "prod")
MAX_REPORTS_PER_BATCH = 500

APPLY_RESULT, REGISTERED, RESOURCE_STATUS, LOG = "apply_result", "registered", "resource_status", "log"


class ApplyResult(TypedDict, total=False):
    request_id: str | None
    record_id: int | None
    cluster: str | None
    namespace: str | None
    action: str | None
    ok: bool
    objects: list[dict]
    error: dict | None


class Registered(TypedDict):
    name: str
    env: str


class ResourceStatus(TypedDict):
    cluster: str
    reports: list[dict]


class LogLines(TypedDict):
    lines: list[dict]


def apply_result(request: dict, result: dict) -> ApplyResult:
    """The answer to a ``deploy.apply_requested`` ``request``: its identity and the engine's ``result``."""
    return {"request_id": request.get("request_id"), "record_id": request.get("record_id"),
            "cluster": request.get("cluster"), "namespace": request.get("namespace"),
            "action": request.get("action"), **result}


def registered(name: str, env: str) -> Registered:
    return {"name": name, "env": env}


def resource_status(cluster: str, reports: list[dict]) -> ResourceStatus:
    """Reports of one cluster, each carrying the cluster's name."""
    return {"cluster": cluster, "reports": [{**r, "cluster": cluster} for r in reports]}


def log_lines(lines: list[dict]) -> LogLines:
    return {"lines": lines}


def registration(data) -> dict:
    if not isinstance(data, dict):
        raise Invalid("The body must be a JSON object.")
    name = check_label(data.get("name"), "name")
    env = data.get("env")
    if env not in ENVS:
        raise Invalid("'env' must be 'test' or 'prod'.", {"field": "env"})
    server = data.get("server")
    parts = urlsplit(server) if isinstance(server, str) else None
    if not parts or parts.scheme != "https" or not parts.hostname or len(server) > 512:
        raise Invalid("'server' must be the API server's https:// URL.", {"field": "server"})
    ca = data.get("ca_cert")
    if not isinstance(ca, str) or "-----BEGIN CERTIFICATE-----" not in ca or len(ca) > 65536:
        raise Invalid("'ca_cert' must be the cluster CA certificate in PEM.", {"field": "ca_cert"})
    token = data.get("token")
    # A bearer token travels in an HTTP header: printable ASCII (a ServiceAccount token is a JWT).
    if not isinstance(token, str) or not token.strip() or len(token) > 16384 \
            or not (token.strip().isascii() and token.strip().isprintable()):
        raise Invalid("'token' must be the ServiceAccount token MAE deploys with (printable ASCII).",
                      {"field": "token"})
    return {"name": name, "env": env, "server": server.rstrip("/"), "ca_cert": ca, "token": token.strip()}


def _int(value, field: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise Invalid(f"Report field '{field}' must be a whole number.", {"field": field})
    if number < 0:
        raise Invalid(f"Report field '{field}' must not be negative.", {"field": field})
    if number >= 2 ** 63:  # what the stored BIGINT holds
        raise Invalid(f"Report field '{field}' is too large.", {"field": field})
    return number


def report(data) -> dict:
    """One operator report, checked; the cluster name is never taken from it."""
    if not isinstance(data, dict):
        raise Invalid("Each report must be a JSON object.")
    for field, longest in (("namespace", 63), ("kind", 64), ("name", 253), ("uid", 64)):
        if not isinstance(data.get(field), str) or not data[field]:
            raise Invalid(f"Report field '{field}' is required.", {"field": field})
        if len(data[field]) > longest:  # what the stored row holds
            raise Invalid(f"Report field '{field}' is longer than {longest} characters.", {"field": field})
    check_label(data["namespace"], "namespace")
    clean = dict(data)
    clean.pop("cluster", None)
    clean["resource_version"] = str(_int(data.get("resource_version"), "resource_version"))
    for field in ("generation", "observed_generation"):
        if data.get(field) is not None:
            clean[field] = _int(data[field], field)
    clean["deleted"] = bool(data.get("deleted", False))
    versions = data.get("versions")
    if versions is not None:  # the operator's per-stream versions (shared/reportorder.py)
        if not isinstance(versions, dict) or set(versions) - set(reportorder.PARTS):
            raise Invalid("Report field 'versions' must be an object of "
                          f"{', '.join(reportorder.PARTS)} resourceVersions.", {"field": "versions"})
        clean["versions"] = {part: _int(versions.get(part, 0), f"versions.{part}") for part in reportorder.PARTS}
    return clean


def reports(data) -> list[dict]:
    if not isinstance(data, list):
        raise Invalid("'reports' must be a list.", {"field": "reports"})
    if len(data) > MAX_REPORTS_PER_BATCH:
        raise Invalid(f"At most {MAX_REPORTS_PER_BATCH} reports per request.", {"field": "reports"})
    return [report(r) for r in data]


def full_state(data) -> dict | None:
    """The operator's "this is everything I see" marker sent after a full list (optional)."""
    if data is None:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("deployments"), list):
        raise Invalid("'full_state' must be {\"resource_version\", \"deployments\": [...]}.",
                      {"field": "full_state"})
    deployments = []
    for item in data["deployments"]:
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) and item[k] for k in ("namespace", "name")):
            raise Invalid("Each of 'full_state.deployments' needs 'namespace' and 'name'.",
                          {"field": "full_state.deployments"})
        deployments.append({"namespace": item["namespace"], "name": item["name"]})
    return {"resource_version": str(_int(data.get("resource_version"), "full_state.resource_version")),
            "deployments": deployments}


# -- rotation and reachability (domain/registry.py) ----------------------------------------

UNREACHABLE = "unreachable"
CREDENTIAL_FIELDS = {"server", "ca_cert", "token"}


class Unreachable(TypedDict):
    """``cluster.unreachable``: a cluster's probes have failed for CLUSTER_UNREACHABLE_SECONDS
    (once per outage; the platform admins' channels hear it)."""
    cluster: str
    env: str
    server: str
    since: str | None
    error: str | None


def unreachable(cluster: str, env: str, server: str, since: str | None, error: str | None) -> Unreachable:
    return {"cluster": cluster, "env": env, "server": server, "since": since, "error": error}


def new_credentials(data, name: str, env: str, server: str, ca_cert: str) -> dict:
    """``{"server"?, "ca_cert"?, "token"}`` for a registered cluster, checked like a registration
    (the server and CA it has now, unless given)."""
    if not isinstance(data, dict):
        raise Invalid("The body must be a JSON object.")
    for key in data:
        if key not in CREDENTIAL_FIELDS:
            raise Invalid(f"'{key}' is not a credential; send server, ca_cert and token.", {"field": key})
    if "token" not in data:
        raise Invalid("'token' is required: the ServiceAccount token MAE deploys with.", {"field": "token"})
    return registration({"name": name, "env": env, "server": data.get("server") or server,
                         "ca_cert": data.get("ca_cert") or ca_cert, "token": data["token"]})
