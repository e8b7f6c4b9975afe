"""Message shapes of the cluster service: what a registration and an operator report must look like.

The report shape is the data of ``cluster.resource_status`` in docs/contracts.md.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from shared import reportorder
from shared.errors import Invalid
from shared.names import check_label

ENVS = ("test", "prod")
MAX_REPORTS_PER_BATCH = 500


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
    if not isinstance(token, str) or not token.strip() or len(token) > 16384:
        raise Invalid("'token' must be the ServiceAccount token MAE deploys with.", {"field": "token"})
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
