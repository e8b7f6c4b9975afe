"""An application's policy overrides: what a platform admin may change for one app.

``{"pod_security": "baseline" | "privileged", "quota": {...} | null, "limits": {...} | null}``

* ``pod_security``: the workload policy's level (services/deploy/domain/policy.py) and the
  Pod Security ``enforce`` label of the app's namespaces; ``privileged`` is for a real need
  (a node agent, a CNI), granted by an admin and audited.
* ``quota``: the namespace's ResourceQuota ``spec.hard`` (resource → quantity); ``limits``:
  its LimitRange container item (``default``, ``defaultRequest``, ``max``, ``min`` → resource
  → quantity). ``null`` (or absent) means the platform's defaults (``NAMESPACE_QUOTA``,
  ``NAMESPACE_LIMITS``), which the cluster service applies.
"""
from __future__ import annotations

import re

from shared.errors import Invalid

LEVELS = ("baseline", "privileged")
QUOTA_RESOURCES = frozenset({
    "pods", "services", "secrets", "configmaps", "persistentvolumeclaims", "replicationcontrollers",
    "services.loadbalancers", "services.nodeports", "cpu", "memory", "requests.cpu", "requests.memory",
    "limits.cpu", "limits.memory", "requests.storage", "ephemeral-storage", "requests.ephemeral-storage",
    "limits.ephemeral-storage"})
LIMIT_KEYS = ("default", "defaultRequest", "max", "min")
LIMIT_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
_QUANTITY = re.compile(r"^(\d+(\.\d+)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_COUNT = re.compile(r"^count/[a-z0-9.-]{1,100}$")


def _quantity(value, where: str) -> str:
    text = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _QUANTITY.match(text):
        raise Invalid(f"'{where}' must be a Kubernetes quantity such as 500m, 2, 512Mi or 4Gi.",
                      {"field": where})
    return text


def _quota(value) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > 30:
        raise Invalid("'quota' must map resources (pods, requests.cpu, limits.memory, …) to quantities, "
                      "or be null for the platform's default.", {"field": "quota"})
    out = {}
    for key, qty in value.items():
        if key not in QUOTA_RESOURCES and not _COUNT.match(str(key)):
            raise Invalid(f"'quota.{key}' is not a resource a namespace quota can limit; use one of "
                          f"{', '.join(sorted(QUOTA_RESOURCES))} or count/<resource>.", {"field": f"quota.{key}"})
        out[key] = _quantity(qty, f"quota.{key}")
    return out


def _limits(value) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - set(LIMIT_KEYS):
        raise Invalid(f"'limits' must be {{{', '.join(LIMIT_KEYS)}}} → {{cpu, memory, ephemeral-storage}} "
                      "→ quantity, or null for the platform's default.", {"field": "limits"})
    out = {}
    for key, resources in value.items():
        if not isinstance(resources, dict) or set(resources) - LIMIT_RESOURCES:
            raise Invalid(f"'limits.{key}' must map cpu, memory or ephemeral-storage to quantities.",
                          {"field": f"limits.{key}"})
        out[key] = {r: _quantity(q, f"limits.{key}.{r}") for r, q in resources.items()}
    return out


def check(data, current: dict | None) -> dict:
    """The new overrides: ``current`` with the fields ``data`` names replaced (a PUT of a
    partial body changes only what it names)."""
    if not isinstance(data, dict):
        raise Invalid("The body must be a JSON object.", {"field": "body"})
    unknown = set(data) - {"pod_security", "quota", "limits"}
    if unknown:
        raise Invalid(f"Unknown field(s): {', '.join(sorted(unknown))}; a policy has pod_security, quota "
                      "and limits.", {"field": sorted(unknown)[0]})
    out = dict(current or {})
    if "pod_security" in data:
        if data["pod_security"] not in LEVELS:
            raise Invalid("'pod_security' must be 'baseline' or 'privileged'.", {"field": "pod_security"})
        out["pod_security"] = data["pod_security"]
    if "quota" in data:
        out["quota"] = _quota(data["quota"])
    if "limits" in data:
        out["limits"] = _limits(data["limits"])
    return out


def view(stored: dict | None) -> dict:
    """What ``GET /apps/{app}/policy`` shows: every field, ``null`` for the platform's default."""
    stored = stored or {}
    return {"pod_security": stored.get("pod_security") or "baseline",
            "quota": stored.get("quota"), "limits": stored.get("limits")}
