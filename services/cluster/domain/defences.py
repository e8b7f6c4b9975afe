"""What a namespace MAE made carries besides its mark, and how to tell that it still does.

Every app namespace is held by the cluster itself to:

* Pod Security Admission labels (``NAMESPACE_POD_SECURITY``: enforce baseline, warn and
  audit restricted); an admin may set an app's ``pod_security`` to ``privileged`` (or
  ``restricted``), which replaces the enforce level only;
* a ResourceQuota ``mae-quota`` whose ``spec.hard`` is ``NAMESPACE_QUOTA``, or the app's
  own ``quota``;
* a LimitRange ``mae-limits`` with one ``Container`` item built from ``NAMESPACE_LIMITS``
  (``default``, ``defaultRequest``, ``max``, optionally ``min``/``maxLimitRequestRatio``),
  or the app's own ``limits``.

An app's policy comes from org (``app_policy_changed``): ``{"pod_security", "quota",
"limits"}``; a ``null``/missing quota or limits means the configured default, a map
replaces it as a whole (``{}``: none for this app). An empty or null config value turns
that object off for every app without its own.

Pure: no I/O. ``namespaces.enact`` writes what this computes; the cluster service's tend
compares the cluster's namespaces with it (``drift``) to heal what was changed by hand.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kubernetes.utils.quantity import parse_quantity

MANAGED_BY = {"app.kubernetes.io/managed-by": "mae"}
APP_ID = "mae.io/app-id"   # annotation: the application's id, the mark of ownership
APP = "mae.io/app"
QUOTA_NAME = "mae-quota"
LIMITS_NAME = "mae-limits"

# Pod Security Admission on every namespace MAE creates: the cluster itself refuses what
# the baseline forbids, and warns and audits what restricted would (NAMESPACE_POD_SECURITY).
POD_SECURITY = {"enforce": "baseline", "warn": "restricted", "audit": "restricted", "version": "latest"}
PSA_MODES = ("enforce", "warn", "audit")
LEVELS = ("privileged", "baseline", "restricted")   # loosest first

# Defaults when the config says nothing (a config key set to null or {} turns the object off):
# room for a small team's app — 50 pods, a few services — with every container given a
# request and a limit unless it sets its own.
QUOTA = {"pods": "50", "requests.cpu": "4", "requests.memory": "8Gi", "limits.cpu": "8",
         "limits.memory": "16Gi", "services": "20", "secrets": "50", "configmaps": "50",
         "persistentvolumeclaims": "10", "services.loadbalancers": "0", "services.nodeports": "0"}
LIMITS = {"default": {"cpu": "500m", "memory": "512Mi"},
          "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
          "max": {"cpu": "2", "memory": "4Gi"}}
LIMIT_KEYS = ("default", "defaultRequest", "max", "min", "maxLimitRequestRatio")
POLICY_LEVELS = ("baseline", "privileged", "restricted")


def object_labels(namespace: str) -> dict:
    return {**MANAGED_BY, APP: namespace}


def pod_security_labels(setting: dict | None = None) -> dict:
    levels = {**POD_SECURITY, **(setting or {})}
    version = str(levels.get("version") or "latest")
    out = {}
    for mode in PSA_MODES:
        if levels.get(mode):
            out[f"pod-security.kubernetes.io/{mode}"] = str(levels[mode])
            out[f"pod-security.kubernetes.io/{mode}-version"] = version
    return out


# -- settings and an app's policy -----------------------------------------------------------

def _text(value) -> str:
    """A quantity as the API takes it: YAML's 50 or 0.5 become "50" and "0.5"."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a quantity")
    return str(value)


def _resources(value) -> dict:
    return {str(k): _text(v) for k, v in (value or {}).items()} if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Settings:
    """The configured defaults for every app namespace."""
    pod_security: dict = field(default_factory=dict)
    quota: dict | None = field(default_factory=lambda: dict(QUOTA))
    limits: dict | None = field(default_factory=lambda: {k: dict(v) for k, v in LIMITS.items()})

    @classmethod
    def from_config(cls, config: dict) -> "Settings":
        quota = config.get("NAMESPACE_QUOTA", QUOTA)
        limits = config.get("NAMESPACE_LIMITS", LIMITS)
        return cls(pod_security=dict(config.get("NAMESPACE_POD_SECURITY") or {}),
                   quota=quota if isinstance(quota, dict) else None,
                   limits=limits if isinstance(limits, dict) else None)


def clean_policy(policy) -> dict:
    """The parts of an app's policy (from org) this service acts on; anything else is ignored.
    ``quota``/``limits`` are present only when the app has its own (a map, ``{}`` = none)."""
    if not isinstance(policy, dict):
        return {}
    out = {}
    if policy.get("pod_security") in POLICY_LEVELS:
        out["pod_security"] = policy["pod_security"]
    for key in ("quota", "limits"):
        if isinstance(policy.get(key), dict):
            out[key] = policy[key]
    return out


@dataclass(frozen=True)
class Defences:
    """What one app's namespace should carry: PSA levels, ``spec.hard`` (None: no quota) and
    the LimitRange's Container item as the API server stores it (None: no LimitRange)."""
    pod_security: dict
    quota: dict | None
    limits: dict | None


def hard(quota) -> dict | None:
    out = _resources(quota)
    return out or None


def container_item(limits) -> dict | None:
    """The LimitRange item for containers, with what the API server fills in on create
    (``SetDefaults_LimitRangeItem``: default ← max, defaultRequest ← default, then ← min),
    so that what MAE writes is exactly what it reads back."""
    if not isinstance(limits, dict):
        return None
    item = {key: _resources(limits.get(key)) for key in LIMIT_KEYS}
    for name, value in item["max"].items():
        item["default"].setdefault(name, value)
    for name, value in item["default"].items():
        item["defaultRequest"].setdefault(name, value)
    for name, value in item["min"].items():
        item["defaultRequest"].setdefault(name, value)
    item = {k: v for k, v in item.items() if v}
    return {"type": "Container", **item} if item else None


def for_app(settings: Settings, policy=None) -> Defences:
    """The configured defaults with the app's own policy over them."""
    policy = clean_policy(policy)
    levels = {**POD_SECURITY, **settings.pod_security}
    if policy.get("pod_security") in ("privileged", "restricted"):
        levels["enforce"] = policy["pod_security"]   # baseline: the configured level
    quota = policy["quota"] if "quota" in policy else settings.quota
    limits = policy["limits"] if "limits" in policy else settings.limits
    return Defences(levels, hard(quota), container_item(limits))


# -- the objects -----------------------------------------------------------------------------

def quota_body(namespace: str, spec_hard: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": QUOTA_NAME, "namespace": namespace, "labels": object_labels(namespace)},
            "spec": {"hard": dict(spec_hard)}}


def limit_range_body(namespace: str, item: dict) -> dict:
    return {"apiVersion": "v1", "kind": "LimitRange",
            "metadata": {"name": LIMITS_NAME, "namespace": namespace, "labels": object_labels(namespace)},
            "spec": {"limits": [dict(item)]}}


# -- comparing with the cluster -------------------------------------------------------------

def _same_quantity(a, b) -> bool:
    try:
        return parse_quantity(a) == parse_quantity(b)
    except (ValueError, TypeError, ArithmeticError):
        return str(a) == str(b)


def same_quantities(a: dict | None, b: dict | None) -> bool:
    """Equal maps of quantities: the API server writes "1000m" back as "1", "0.5" as "500m"."""
    a, b = a or {}, b or {}
    return set(a) == set(b) and all(_same_quantity(a[k], b[k]) for k in a)


def _labelled(live: dict, namespace: str) -> bool:
    labels = (live.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in object_labels(namespace).items())


def quota_matches(live: dict | None, namespace: str, spec_hard: dict | None) -> bool:
    if spec_hard is None:
        return live is None or not _labelled(live, namespace)   # only MAE's own is removed
    return live is not None and _labelled(live, namespace) and \
        same_quantities((live.get("spec") or {}).get("hard"), spec_hard)


def limits_match(live: dict | None, namespace: str, item: dict | None) -> bool:
    if item is None:
        return live is None or not _labelled(live, namespace)
    if live is None or not _labelled(live, namespace):
        return False
    items = (live.get("spec") or {}).get("limits") or []
    if len(items) != 1 or not isinstance(items[0], dict) or items[0].get("type") != "Container":
        return False
    return all(same_quantities(items[0].get(k), item.get(k)) for k in LIMIT_KEYS)


def _rank(level) -> int | None:
    return LEVELS.index(level) if level in LEVELS else None


def namespace_drift(live: dict | None, namespace: str, app_id: int | None, levels: dict) -> str | None:
    """Why a namespace MAE keeps (from a list by MAE's label) is not as MAE made it, or None.

    ``live`` None: not in the list — deleted, or its labels were removed (the tend's fix
    tells which, and leaves a namespace without MAE's label and the app's id alone).
    Pod Security levels made *stricter* by hand are not drift: healing undoes loosening.
    """
    if live is None:
        return "missing or unlabelled"
    meta = live.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return "being deleted"
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    if any(labels.get(k) != v for k, v in object_labels(namespace).items()):
        return "labels"
    if app_id is not None and annotations.get(APP_ID) != str(app_id):
        return "app id"
    version = str(levels.get("version") or "latest")
    for mode in PSA_MODES:
        want = levels.get(mode)
        if not want:
            continue
        have = labels.get(f"pod-security.kubernetes.io/{mode}")
        want_rank, have_rank = _rank(str(want)), _rank(have)
        if have_rank is None or (want_rank is not None and have_rank < want_rank) or \
                (want_rank is None and have != str(want)):
            return f"pod security {mode}"
        if have == str(want) and labels.get(f"pod-security.kubernetes.io/{mode}-version") != version:
            return f"pod security {mode} version"
    return None


def keep_stricter(live_labels: dict, wanted: dict) -> dict:
    """The labels to set on a namespace MAE keeps: ``wanted``, except a Pod Security level
    someone made stricter by hand (with its version), which stays — unless MAE wants
    ``privileged`` there, an admin's explicit choice for the app."""
    out = dict(wanted)
    for mode in PSA_MODES:
        key = f"pod-security.kubernetes.io/{mode}"
        want, have = _rank(wanted.get(key)), _rank(live_labels.get(key))
        if want is not None and have is not None and have > want and wanted.get(key) != "privileged":
            out[key] = live_labels[key]
            if f"{key}-version" in live_labels:
                out[f"{key}-version"] = live_labels[f"{key}-version"]
    return out


def drift(namespace: str, app_id: int | None, want: Defences, live_ns: dict | None,
          live_quota: dict | None, live_limits: dict | None,
          quotas_known: bool = True, limits_known: bool = True) -> list[str]:
    """What differs between MAE's namespace on the cluster and what it should carry
    (empty: nothing to do). Quotas/limits that could not be listed are not compared."""
    found = namespace_drift(live_ns, namespace, app_id, want.pod_security)
    if found:
        return [found]   # the fix re-creates or re-marks it, then its quota and limits
    out = []
    if limits_known and not limits_match(live_limits, namespace, want.limits):
        out.append("limits")
    if quotas_known and not quota_matches(live_quota, namespace, want.quota):
        out.append("quota")
    return out
