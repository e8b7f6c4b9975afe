"""What an ingress may say: checked before anything is stored, as ``config`` does for versions.

* ``host``: the host every cluster serves unless ``hosts`` names one for its environment
  (``{"test": ..., "prod": ...}``); each is claimed for the app (``ingresses.claim_host``).
* ``tls``: ``{"secret_name"}`` — a Secret the app has — or cert-manager's ``{"issuer"}`` /
  ``{"cluster_issuer"}``, a name this installation offers (CERT_MANAGER_ISSUERS /
  CERT_MANAGER_CLUSTER_ISSUERS), whose certificate lands in ``secret_name``
  (``<ingress>-tls`` unless given). The template adds cert-manager's annotation.
* ``routes``: ``{path, service, version?, port?}``; without ``version`` a route goes to the
  service's stable Service (``names.routed_name``), i.e. to its routed version.
"""
from __future__ import annotations

from services.deploy.domain.config import (HOST, URL_PATH, check_fields, check_object, check_template_name,
                                           check_unknown, check_values, invalid, keyed, text_field,
                                           whole_number)
from shared.names import check_label

INGRESS_FIELDS = {"name", "host", "hosts", "tls", "routes", "template", "values", "description"}
ENVS = ("test", "prod")


def check_host(value, field: str) -> str:
    host = text_field(value, field, 253, required=True).lower()
    if not HOST.match(host):
        raise invalid(field, f"'{field}' must be a DNS name such as 'shop.example.com'.")
    return host


def check_hosts(value) -> dict:
    """``{"test"?: host, "prod"?: host}``: the host an environment's clusters serve (``host``
    elsewhere); null or {} for none."""
    value = keyed(value, "hosts", ENVS, "'hosts' must be an object of env: host, e.g. "
                                        "{\"prod\": \"shop.example.com\"}.")
    return {env: check_host(host, f"hosts.{env}") for env, host in sorted(value.items()) if host is not None}


def check_tls(value, name: str, issuers=(), cluster_issuers=()) -> dict | None:
    """``{"secret_name"}`` (a Secret the app has), or cert-manager's ``{"issuer"}`` /
    ``{"cluster_issuer"}`` — a name from CERT_MANAGER_ISSUERS / CERT_MANAGER_CLUSTER_ISSUERS —
    whose certificate goes to ``secret_name`` (``<ingress>-tls`` unless given)."""
    if value in (None, {}):
        return None
    shape = "'tls' must be {\"secret_name\"}, {\"issuer\"} or {\"cluster_issuer\"} (cert-manager)."
    if not isinstance(value, dict) or set(value) - {"secret_name", "issuer", "cluster_issuer"}:
        raise invalid("tls", shape)
    if value.get("issuer") and value.get("cluster_issuer"):
        raise invalid("tls", "Give 'tls.issuer' or 'tls.cluster_issuer', not both.")
    for key, allowed, setting in (("issuer", issuers, "CERT_MANAGER_ISSUERS"),
                                  ("cluster_issuer", cluster_issuers, "CERT_MANAGER_CLUSTER_ISSUERS")):
        given = value.get(key)
        if given is None:
            continue
        if given not in allowed:
            offered = f"one of {', '.join(map(repr, allowed))}" if allowed else "none is configured"
            raise invalid(f"tls.{key}", f"'tls.{key}' must be a cert-manager {key.replace('_', ' ')} this "
                                         f"installation offers ({setting}: {offered}), not {str(given)[:63]!r}.")
        secret = value.get("secret_name")
        secret = f"{name[:59].rstrip('-')}-tls" if secret is None else secret
        return {"secret_name": check_label(secret, "tls.secret_name"), key: given}
    return {"secret_name": check_label(value.get("secret_name"), "tls.secret_name")}


def check_routes(routes) -> list[dict]:
    if not isinstance(routes, list) or not routes:
        raise invalid("routes", "'routes' must be a non-empty list of {path, service, version?, port?}.")
    if len(routes) > 50:
        raise invalid("routes", "'routes' may hold at most 50 routes.")
    checked_routes, paths = [], set()
    for i, route in enumerate(routes):
        field = f"routes[{i}]"
        if not isinstance(route, dict) or set(route) - {"path", "service", "version", "port"}:
            raise invalid(field, f"'{field}' must be {{path, service, version?, port?}}.")
        path = text_field(route.get("path") or "/", f"{field}.path", 1024)
        if not URL_PATH.match(path):
            raise invalid(f"{field}.path", f"'{field}.path' must start with '/' (no spaces).")
        if path in paths:
            raise invalid(f"{field}.path", f"The path {path!r} is routed twice.")
        paths.add(path)
        checked_routes.append({
            "path": path,
            "service": check_label(route.get("service"), f"{field}.service"),
            # none: the route follows the service's routed version (its stable Service)
            "version": None if route.get("version") is None else
            check_label(route.get("version"), f"{field}.version"),
            "port": None if route.get("port") is None else whole_number(route.get("port"), f"{field}.port", 1, 65535),
        })
    return checked_routes


def check_ingress(data, partial: bool = False, name: str | None = None, issuers=(), cluster_issuers=()) -> dict:
    """An ingress's config; ``partial`` for PATCH (only the given fields; ``name`` is the
    ingress's). ``issuers``/``cluster_issuers``: the cert-manager names config offers."""
    data = check_object(data)
    check_unknown(data, INGRESS_FIELDS - ({"name"} if partial else set()))
    out: dict = {} if partial else {"name": check_label(data.get("name"), "name")}
    name = out.get("name") or name
    checks = {
        "host": lambda v: check_host(v, "host"),
        "hosts": check_hosts,
        "tls": lambda v: check_tls(v, name, issuers, cluster_issuers),
        "routes": check_routes,
        "template": check_template_name,
        "values": check_values,
        "description": lambda v: text_field(v, "description", 4000),
    }
    return check_fields(data, checks, partial, out)
