"""The resource types the sandbox serves, with their defaulting and validation.

This is the sandbox's equivalent of the API server's per-type "strategies": which
group/version/kind/plural a resource has, whether it is namespaced, which
subresources it has, whether spec changes bump ``metadata.generation``, what the
defaulting webhooks-that-are-not-webhooks fill in (``replicas: 1``, ``strategy``,
``imagePullPolicy``, a Service's ``clusterIP``, ...) and what makes an object invalid
(422).  Only the checks that MAE, kubectl and a careless manifest actually trip over
are implemented; the error *shape* (``Status`` with ``details.causes``) is exact.

Defaults are applied on create and on update, so clients that round-trip objects see
what they would see on a real cluster (e.g. ``kubectl apply`` computes its patch
against the defaulted live object).
"""
from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import re
from dataclasses import dataclass

from .selectors import SelectorError, labels_match, selector_object_to_reqs

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
PERCENT = re.compile(r"^\d+%$")

SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                 "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
                 "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
             "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used "
             "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple = ()
    subresources: tuple = ()
    has_generation: bool = False
    name_rule: str = "subdomain"  # or "label"
    categories: tuple = ()
    verbs: tuple = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
    storage: str = ""  # another type's key: this one is a view of its objects (events.k8s.io Events)

    @functools.cached_property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @functools.cached_property
    def key(self) -> str:
        """Storage key; unique across groups (like the etcd prefix) but for views.  Cached: it is
        on every store access."""
        if self.storage:
            return self.storage
        return f"{self.group}/{self.plural}" if self.group else self.plural

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


TYPES: list[ResourceType] = [
    ResourceType("", "v1", "Namespace", "namespaces", False, ("ns",), ("status", "finalize"), name_rule="label",
                 verbs=("create", "delete", "get", "list", "patch", "update", "watch")),  # no deletecollection
    ResourceType("", "v1", "Pod", "pods", True, ("po",), ("status", "log", "exec", "attach", "portforward"),
                 categories=("all",)),
    ResourceType("", "v1", "Service", "services", True, ("svc",), ("status",), name_rule="label", categories=("all",)),
    ResourceType("", "v1", "Secret", "secrets", True),
    ResourceType("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    ResourceType("", "v1", "Event", "events", True, ("ev",)),
    # The same objects with the field names of the newer API (sandbox/eventsv1.py).
    ResourceType("events.k8s.io", "v1", "Event", "events", True, ("ev",), storage="events"),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
    # Enforced on pod creation by sandbox/admission.py, as the real admission plugins do.
    ResourceType("", "v1", "ResourceQuota", "resourcequotas", True, ("quota",), ("status",)),
    ResourceType("", "v1", "LimitRange", "limitranges", True, ("limits",)),
    ResourceType("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("status", "scale"),
                 has_generation=True, categories=("all",)),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("status", "scale"),
                 has_generation=True, categories=("all",)),
    ResourceType("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",), ("status",), has_generation=True),
    ResourceType("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ("hpa",),
                 ("status",), has_generation=True, categories=("all",)),
    # RBAC: stored and served (so `kubectl apply -f k8s/operator/` works), never enforced —
    # the sandbox authorizes every request that carries its token. Names are "path segment"
    # names like on a real API server (``system:foo`` is fine).
    ResourceType("rbac.authorization.k8s.io", "v1", "Role", "roles", True, name_rule="path"),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False, name_rule="path"),
    ResourceType("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True, name_rule="path"),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False,
                 name_rule="path"),
    # Stored and served (k8s/operator/mke-rbac.yaml confines MAE's deployer with one), never
    # enforced: the sandbox runs no CEL.
    ResourceType("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy",
                 "validatingadmissionpolicies", False, (), ("status",), has_generation=True, name_rule="subdomain"),
    ResourceType("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding",
                 "validatingadmissionpolicybindings", False, name_rule="subdomain"),
    # Stored only: no disruption accounting.
    ResourceType("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",), ("status",),
                 has_generation=True),
    # Run by the controllers of sandbox/jobs.py and sandbox/workloads.py; the sandbox's one
    # node (sandbox/nodes.py) is a Node object.
    ResourceType("batch", "v1", "Job", "jobs", True, (), ("status",), has_generation=True,
                 categories=("all",)),
    ResourceType("batch", "v1", "CronJob", "cronjobs", True, ("cj",), ("status",), has_generation=True,
                 categories=("all",)),
    ResourceType("", "v1", "Node", "nodes", False, ("no",), ("status",)),
    ResourceType("", "v1", "ReplicationController", "replicationcontrollers", True, ("rc",), ("status", "scale"),
                 has_generation=True, categories=("all",)),
    ResourceType("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("status",), has_generation=True,
                 categories=("all",)),
    ResourceType("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), ("status", "scale"),
                 has_generation=True, categories=("all",)),
    ResourceType("apps", "v1", "ControllerRevision", "controllerrevisions", True),
    # Stored; the node's lease in kube-node-lease is renewed by sandbox/nodes.py.
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", True),
]

BY_KEY = {t.key: t for t in TYPES if not t.storage}
BY_GVR = {(t.group, t.version, t.plural): t for t in TYPES}
BY_KIND = {(t.group, t.kind): t for t in TYPES}

NAMESPACES = BY_KEY["namespaces"]
PODS = BY_KEY["pods"]
SERVICES = BY_KEY["services"]
SECRETS = BY_KEY["secrets"]
EVENTS = BY_KEY["events"]
EVENTS_V1 = BY_GVR[("events.k8s.io", "v1", "events")]
SERVICEACCOUNTS = BY_KEY["serviceaccounts"]
DEPLOYMENTS = BY_KEY["apps/deployments"]
REPLICASETS = BY_KEY["apps/replicasets"]
JOBS = BY_KEY["batch/jobs"]
CRONJOBS = BY_KEY["batch/cronjobs"]
NODES = BY_KEY["nodes"]
REPLICATIONCONTROLLERS = BY_KEY["replicationcontrollers"]
DAEMONSETS = BY_KEY["apps/daemonsets"]
STATEFULSETS = BY_KEY["apps/statefulsets"]
CONTROLLERREVISIONS = BY_KEY["apps/controllerrevisions"]
LEASES = BY_KEY["coordination.k8s.io/leases"]


def groups() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for t in TYPES:
        out.setdefault(t.group, [])
        if t.version not in out[t.group]:
            out[t.group].append(t.version)
    return out


# ------------------------------------------------------------------ defaulting

def image_tag(image: str) -> str:
    """The tag of an image reference ('' when none); digests count as no tag."""
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def _default_container(c: dict) -> None:
    tag = image_tag(c.get("image") or "")
    c.setdefault("imagePullPolicy", "Always" if tag in ("", "latest") else "IfNotPresent")
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    for p in c.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(kind))


def _default_probe(probe) -> None:
    """The API server's Probe defaults (pkg/apis/core/v1/defaults.go)."""
    if not isinstance(probe, dict):
        return
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    if isinstance(probe.get("httpGet"), dict):
        probe["httpGet"].setdefault("path", "/")
        probe["httpGet"].setdefault("scheme", "HTTP")


def default_pod_spec(spec: dict) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                _default_container(c)


def _default_template(obj: dict) -> None:
    tpl = obj.setdefault("spec", {}).setdefault("template", {})
    if isinstance(tpl, dict):
        if isinstance(meta := tpl.setdefault("metadata", {}), dict) and meta.get("creationTimestamp", 0) is None:
            del meta["creationTimestamp"]  # null (kubectl rollout undo sends it) is dropped, as the server does
        if isinstance(tpl.get("spec"), dict):
            default_pod_spec(tpl["spec"])


def _default_deployment(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = strategy.setdefault("rollingUpdate", {})
        ru.setdefault("maxSurge", "25%")
        ru.setdefault("maxUnavailable", "25%")
    _default_template(obj)
    obj.setdefault("status", {})


def _default_replicaset(obj: dict) -> None:
    obj.setdefault("spec", {}).setdefault("replicas", 1)
    _default_template(obj)
    obj.setdefault("status", {"replicas": 0})


def _default_pod(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    default_pod_spec(spec)
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("tolerations", [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    ])
    status = obj.setdefault("status", {})
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", "BestEffort")


def _default_service(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName":
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    for p in spec.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
            if "port" in p:
                p.setdefault("targetPort", p["port"])
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    obj.setdefault("status", {"loadBalancer": {}})


def _default_namespace(obj: dict) -> None:
    name = obj["metadata"].get("name")
    if name:
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")


def _default_resourcequota(obj: dict) -> None:
    # The real quota controller fills status.hard (and status.used) moments after a quota is
    # made; admission needs it. The sandbox counts usage at admission (admission.py) and
    # mirrors spec.hard at once; status.used is not kept.
    hard = (obj.get("spec") or {}).get("hard")
    if isinstance(hard, dict):
        obj.setdefault("status", {})["hard"] = dict(hard)


def _default_secret(obj: dict) -> None:
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None)
    if string_data:
        data = obj.setdefault("data", {}) or {}
        obj["data"] = data
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()


def _default_ingress(obj: dict) -> None:
    obj.setdefault("spec", {})
    obj.setdefault("status", {"loadBalancer": {}})


def _micro_time(value):
    """A MicroTime as the API server writes it back (UTC, six digits, ``Z``), whatever the client sent."""
    if not isinstance(value, str) or not value:
        return value
    from datetime import datetime, timezone

    from .podlogs import parse_rfc3339
    try:
        return datetime.fromtimestamp(parse_rfc3339(value), timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return value


def _default_event(obj: dict) -> None:
    if obj.get("eventTime"):
        obj["eventTime"] = _micro_time(obj["eventTime"])
    series = obj.get("series")
    if isinstance(series, dict) and series.get("lastObservedTime"):
        series["lastObservedTime"] = _micro_time(series["lastObservedTime"])


DEFAULTERS = {
    "events": _default_event,
    "apps/deployments": _default_deployment,
    "apps/replicasets": _default_replicaset,
    "pods": _default_pod,
    "services": _default_service,
    "namespaces": _default_namespace,
    "resourcequotas": _default_resourcequota,
    "secrets": _default_secret,
    "networking.k8s.io/ingresses": _default_ingress,
}


def apply_defaults(rt: ResourceType, obj: dict) -> None:
    fn = DEFAULTERS.get(rt.key)
    if fn:
        fn(obj)


# ------------------------------------------------------------------ validation

def _q(v) -> str:
    import json
    return json.dumps(v)


class Causes(list):
    def required(self, path: str) -> None:
        self.append({"reason": "FieldValueRequired", "message": "Required value", "field": path})

    def invalid(self, path: str, value, detail: str) -> None:
        self.append({"reason": "FieldValueInvalid", "message": f"Invalid value: {_q(value)}: {detail}", "field": path})

    def forbidden(self, path: str, detail: str) -> None:
        self.append({"reason": "FieldValueForbidden", "message": f"Forbidden: {detail}", "field": path})

    def duplicate(self, path: str, value) -> None:
        self.append({"reason": "FieldValueDuplicate", "message": f"Duplicate value: {_q(value)}", "field": path})

    def unsupported(self, path: str, value, allowed) -> None:
        opts = ", ".join(_q(a) for a in allowed)
        self.append({"reason": "FieldValueNotSupported", "message": f"Unsupported value: {_q(value)}: supported values: {opts}", "field": path})


def check_name(c: Causes, path: str, name, rule: str) -> None:
    if not isinstance(name, str) or not name:
        c.required(path)
        return
    if rule == "path":  # RBAC objects: anything that fits in one URL path segment
        if name in (".", "..") or "/" in name or "%" in name:
            c.invalid(path, name, f'may not be {name!r}' if name in (".", "..") else "may not contain '/' or '%'")
        return
    if rule == "label":
        if len(name) > 63 or not DNS1123_LABEL.match(name):
            detail = "must be no more than 63 characters" if len(name) > 63 else LABEL_MSG
            c.invalid(path, name, detail)
    else:
        if len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
            detail = "must be no more than 253 characters" if len(name) > 253 else SUBDOMAIN_MSG
            c.invalid(path, name, detail)


def _check_labels(c: Causes, path: str, labels) -> None:
    if labels is None:
        return
    if not isinstance(labels, dict):
        c.invalid(path, labels, "must be a map of string keys to string values")
        return
    for k, v in labels.items():
        name = k.split("/")[-1]
        prefix = k[: -len(name) - 1] if "/" in k else ""
        if not name or len(name) > 63 or not QUALIFIED_NAME.match(name) or (prefix and not DNS1123_SUBDOMAIN.match(prefix)):
            c.invalid(path, k, "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")
        if not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE.match(v):
            c.invalid(f"{path}", v, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")


def validate_metadata(c: Causes, rt: ResourceType, meta: dict) -> None:
    check_name(c, "metadata.name", meta.get("name"), rt.name_rule)
    _check_labels(c, "metadata.labels", meta.get("labels"))
    ann = meta.get("annotations")
    if ann is not None and (not isinstance(ann, dict) or not all(isinstance(v, str) for v in ann.values())):
        c.invalid("metadata.annotations", ann, "must be a map of string keys to string values")


def _validate_containers(c: Causes, path: str, containers, required: bool) -> None:
    if not containers:
        if required:
            c.required(path)
        return
    if not isinstance(containers, list):
        c.invalid(path, containers, "must be a list")
        return
    seen = set()
    for i, ctr in enumerate(containers):
        p = f"{path}[{i}]"
        if not isinstance(ctr, dict):
            c.invalid(p, ctr, "must be an object")
            continue
        name = ctr.get("name")
        check_name(c, f"{p}.name", name, "label")
        if name in seen:
            c.duplicate(f"{p}.name", name)
        seen.add(name)
        if not ctr.get("image"):
            c.required(f"{p}.image")
        for j, port in enumerate(ctr.get("ports") or []):
            cp = port.get("containerPort") if isinstance(port, dict) else None
            if not isinstance(cp, int) or not 0 < cp < 65536:
                c.invalid(f"{p}.ports[{j}].containerPort", cp, "must be between 1 and 65535, inclusive")


def validate_pod_spec(c: Causes, path: str, spec) -> None:
    if not isinstance(spec, dict):
        c.required(path)
        return
    _validate_containers(c, f"{path}.containers", spec.get("containers"), True)
    _validate_containers(c, f"{path}.initContainers", spec.get("initContainers"), False)
    rp = spec.get("restartPolicy")
    if rp not in ("Always", "OnFailure", "Never"):
        c.unsupported(f"{path}.restartPolicy", rp, ["Always", "OnFailure", "Never"])


def _validate_workload(c: Causes, obj: dict, old: dict | None, deployment: bool) -> None:
    spec = obj.get("spec") or {}
    replicas = spec.get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        c.invalid("spec.replicas", replicas, "must be greater than or equal to 0")
    validate_selector_template(c, obj, old, ("Always",))
    if deployment:
        _validate_strategy(c, spec)


def validate_selector_template(c: Causes, obj: dict, old: dict | None, restart_policies: tuple) -> None:
    """A LabelSelector that is required, matches the template's labels and never changes, and
    a pod template whose restartPolicy is one of ``restart_policies``."""
    spec = obj.get("spec") or {}
    sel = spec.get("selector")
    if not sel or not (sel.get("matchLabels") or sel.get("matchExpressions")):
        if not sel:
            c.required("spec.selector")
        else:
            c.invalid("spec.selector", sel, "empty selector is invalid for deployment")
    tpl = spec.get("template") or {}
    tpl_labels = (tpl.get("metadata") or {}).get("labels") or {}
    if sel:
        try:
            reqs = selector_object_to_reqs(sel)
        except SelectorError as exc:
            c.invalid("spec.selector", sel, str(exc))
            reqs = None
        if reqs is not None and not labels_match(reqs, tpl_labels):
            c.invalid("spec.template.metadata.labels", tpl_labels, "`selector` does not match template `labels`")
    _check_labels(c, "spec.template.metadata.labels", tpl_labels)
    validate_pod_spec(c, "spec.template.spec", tpl.get("spec"))
    if isinstance(tpl.get("spec"), dict) and tpl["spec"].get("restartPolicy", "Always") not in restart_policies:
        c.unsupported("spec.template.spec.restartPolicy", tpl["spec"]["restartPolicy"], list(restart_policies))
    if old is not None and (old.get("spec") or {}).get("selector") != sel:
        c.invalid("spec.selector", sel, "field is immutable")


def _validate_strategy(c: Causes, spec: dict) -> None:
    strategy = spec.get("strategy") or {}
    stype = strategy.get("type")
    if stype not in ("RollingUpdate", "Recreate"):
        c.unsupported("spec.strategy.type", stype, ["Recreate", "RollingUpdate"])
    elif stype == "Recreate" and strategy.get("rollingUpdate") is not None:
        c.forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")
    elif stype == "RollingUpdate":
        ru = strategy.get("rollingUpdate") or {}
        for k in ("maxSurge", "maxUnavailable"):
            v = ru.get(k)
            if isinstance(v, str) and not PERCENT.match(v):
                c.invalid(f"spec.strategy.rollingUpdate.{k}", v, "a valid percent string must be a numeric string followed by an ending '%'")
        if ru.get("maxSurge") in (0, "0%") and ru.get("maxUnavailable") in (0, "0%"):
            c.invalid("spec.strategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"),
                      "may not be 0 when `maxSurge` is 0")
    pds = spec.get("progressDeadlineSeconds")
    if isinstance(pds, int) and pds <= (spec.get("minReadySeconds") or 0):
        c.invalid("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds")


def int_or_percent(value, total: int, round_up: bool) -> int:
    """Resolve an IntOrString like Kubernetes' GetScaledValueFromIntOrPercent."""
    import math
    if value is None:
        value = "25%"
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%"):
        pct = int(value[:-1])
        raw = pct * total / 100.0
        return int(math.ceil(raw)) if round_up else int(math.floor(raw))
    return int(value)


def _validate_service(c: Causes, obj: dict, old: dict | None) -> None:
    spec = obj.get("spec") or {}
    stype = spec.get("type")
    if stype not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        c.unsupported("spec.type", stype, ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"])
    ports = spec.get("ports") or []
    if not ports and stype != "ExternalName" and spec.get("clusterIP") != "None":
        c.required("spec.ports")
    names = set()
    for i, p in enumerate(ports):
        if not isinstance(p, dict):
            c.invalid(f"spec.ports[{i}]", p, "must be an object")
            continue
        port = p.get("port")
        if not isinstance(port, int) or not 0 < port < 65536:
            c.invalid(f"spec.ports[{i}].port", port, "must be between 1 and 65535, inclusive")
        if len(ports) > 1 and not p.get("name"):
            c.required(f"spec.ports[{i}].name")
        if p.get("name") in names:
            c.duplicate(f"spec.ports[{i}].name", p.get("name"))
        names.add(p.get("name"))
    if old is not None:
        old_ip = (old.get("spec") or {}).get("clusterIP")
        if spec.get("clusterIP") and old_ip and spec.get("clusterIP") != old_ip:
            c.invalid("spec.clusterIP", spec.get("clusterIP"), "field is immutable")


def _immutable_data(c: Causes, obj: dict, old, sections: tuple) -> None:
    """ConfigMaps and Secrets with ``immutable: true`` (ValidateConfigMapUpdate/ValidateSecretUpdate)."""
    if old is not None and old.get("immutable"):
        for field in ("immutable",) + sections:
            if (obj.get(field) or {}) != (old.get(field) or {}):
                c.forbidden(field, "field is immutable when `immutable` is set")


def _validate_configmap(c: Causes, obj: dict, old) -> None:
    _immutable_data(c, obj, old, ("data", "binaryData"))
    for section in ("data", "binaryData"):
        for k in (obj.get(section) or {}):
            if not CONFIG_KEY.match(k):
                c.invalid(f"{section}[{k}]", k, "a valid config key must consist of alphanumeric characters, '-', '_' or '.'")


def _validate_secret(c: Causes, obj: dict, old) -> None:
    _immutable_data(c, obj, old, ("data",))
    for k, v in (obj.get("data") or {}).items():
        if not CONFIG_KEY.match(k):
            c.invalid(f"data[{k}]", k, "a valid config key must consist of alphanumeric characters, '-', '_' or '.'")
        try:
            base64.b64decode(v or "", validate=True)
        except (binascii.Error, TypeError, ValueError):
            c.invalid(f"data[{k}]", "<secret contents redacted>", "illegal base64 data")
    if old is not None and obj.get("type") != old.get("type"):
        c.invalid("type", obj.get("type"), "field is immutable")


def _validate_pod(c: Causes, obj: dict, old) -> None:
    validate_pod_spec(c, "spec", obj.get("spec"))


def _validate_event(c: Causes, obj: dict, old) -> None:
    if not obj.get("involvedObject"):
        c.required("involvedObject")


def _validate_rules(c: Causes, obj: dict, old) -> None:
    for i, rule in enumerate(obj.get("rules") or []):
        if not isinstance(rule, dict) or not rule.get("verbs"):
            c.required(f"rules[{i}].verbs")


def _validate_binding(c: Causes, obj: dict, old) -> None:
    ref = obj.get("roleRef")
    if not isinstance(ref, dict) or not ref.get("kind") or not ref.get("name"):
        c.required("roleRef")
    elif ref.get("kind") not in ("Role", "ClusterRole"):
        c.unsupported("roleRef.kind", ref.get("kind"), ("ClusterRole", "Role"))
    if old is not None and ref != old.get("roleRef"):
        c.invalid("roleRef", ref, "cannot change roleRef")
    for i, subject in enumerate(obj.get("subjects") or []):
        if not isinstance(subject, dict) or not subject.get("kind") or not subject.get("name"):
            c.required(f"subjects[{i}].name")


VALIDATORS = {
    "rbac.authorization.k8s.io/roles": _validate_rules,
    "rbac.authorization.k8s.io/clusterroles": _validate_rules,
    "rbac.authorization.k8s.io/rolebindings": _validate_binding,
    "rbac.authorization.k8s.io/clusterrolebindings": _validate_binding,
    "apps/deployments": lambda c, o, old: _validate_workload(c, o, old, True),
    "apps/replicasets": lambda c, o, old: _validate_workload(c, o, old, False),
    "pods": _validate_pod,
    "services": _validate_service,
    "configmaps": _validate_configmap,
    "secrets": _validate_secret,
    "events": _validate_event,
}


def validate(rt: ResourceType, obj: dict, old: dict | None) -> list[dict]:
    c = Causes()
    validate_metadata(c, rt, obj.get("metadata") or {})
    fn = VALIDATORS.get(rt.key)
    if fn:
        fn(c, obj, old)
    return c


# ------------------------------------------------------------------ cluster IPs

class IPAllocator:
    """Hands out ClusterIPs from 10.96.0.0/12 like the service IP allocator."""

    def __init__(self) -> None:
        self.used: set[str] = set()
        self.next = int(ipaddress.ip_address("10.96.0.10"))

    def allocate(self) -> str:
        while True:
            self.next += 1
            ip = str(ipaddress.ip_address(self.next))
            if ip not in self.used:
                self.used.add(ip)
                return ip

    def claim(self, ip: str | None) -> None:
        if ip and ip != "None":
            self.used.add(ip)

    def release(self, ip: str | None) -> None:
        self.used.discard(ip)



# The workload kinds' defaults and validation live in their own module.
from . import workload_specs as _workload_specs  # noqa: E402 - needs the helpers above

DEFAULTERS.update(_workload_specs.DEFAULTERS)
VALIDATORS.update(_workload_specs.VALIDATORS)
