"""A conformance table: the official Python ``kubernetes`` client against the sandbox, kind by kind.

Each check is one thing a client relies on, with what the real kube-apiserver answers as the
expectation (the client's generated API — its return annotations come from Kubernetes'
OpenAPI — tells which type each operation answers; where the real server answers something
else, the comment says so and names the source). ``Checks`` records pass/fail with the
expected/actual text; ``tests/sandbox/test_conformance.py`` runs the table and scores it.
"""
from __future__ import annotations

import inspect
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from kubernetes import client, watch

from sandbox_helpers import IMAGE_A

MERGE = "application/merge-patch+json"
SMP = "application/strategic-merge-patch+json"
JSONPATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"


class Checks:
    """``with checks("pods: create"): ...`` records a pass, or the failure's text."""

    def __init__(self):
        self.results: dict[str, str | None] = {}

    @contextmanager
    def __call__(self, name: str):
        assert name not in self.results, f"duplicate check name {name}"
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - every failure is a line in the report
            self.results[name] = describe(exc)
        else:
            self.results[name] = None

    @property
    def failed(self) -> dict[str, str]:
        return {k: v for k, v in self.results.items() if v is not None}


def describe(exc: BaseException) -> str:
    if isinstance(exc, client.ApiException):
        body = (exc.body or "").strip() if isinstance(exc.body, str) else repr(exc.body)
        return f"got HTTP {exc.status} {exc.reason}: {body[:300]}"
    if isinstance(exc, AssertionError):
        return str(exc)[:500]
    return f"got {type(exc).__name__}: {str(exc)[:400]}"


def expect(ok, expected: str, got) -> None:
    if not ok:
        raise AssertionError(f"expected {expected}; got {got!r:.300}")


def api_error(fn, *args, **kw) -> client.ApiException:
    try:
        answer = fn(*args, **kw)
    except client.ApiException as exc:
        return exc
    raise AssertionError(f"expected an ApiException; got {type(answer).__name__} {str(answer)[:200]}")


# ------------------------------------------------------------------ the kinds

def pod_spec(restart: str = "Always") -> dict:
    return {"restartPolicy": restart, "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "app", "image": IMAGE_A, "ports": [{"containerPort": 8080}]}]}


def template(name: str, restart: str = "Always") -> dict:
    return {"metadata": {"labels": {"app": name}}, "spec": pod_spec(restart)}


def workload(name: str, **extra) -> dict:
    return {"spec": {"selector": {"matchLabels": {"app": name}}, "template": template(name), **extra}}


RULES = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
VAP_SPEC = {"validations": [{"expression": "true"}],
            "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                                                    "operations": ["CREATE"], "resources": ["deployments"]}]}}
BODIES = {  # name, namespace -> the object without metadata (camelCase, as a manifest)
    "namespaces": lambda n, ns: {},
    "pods": lambda n, ns: {"spec": pod_spec()},
    "services": lambda n, ns: {"spec": {"selector": {"app": n}, "ports": [{"port": 80, "targetPort": 8080}]}},
    "configmaps": lambda n, ns: {"data": {"k": "v"}},
    "secrets": lambda n, ns: {"stringData": {"k": "v"}},
    "serviceaccounts": lambda n, ns: {},
    "events": lambda n, ns: {"involvedObject": {"kind": "Pod", "name": "p", "namespace": ns}, "reason": "Test",
                             "message": "m", "type": "Normal", "source": {"component": "conformance"}},
    "events.k8s.io": lambda n, ns: {
        "eventTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "reportingController": "conformance.io/test",
        "reportingInstance": "i-1", "action": "Test", "reason": "Test", "type": "Normal", "note": "n",
        "regarding": {"kind": "Pod", "name": "p", "namespace": ns}},
    "limitranges": lambda n, ns: {"spec": {"limits": [{"type": "Container", "max": {"cpu": "8"}}]}},
    "resourcequotas": lambda n, ns: {"spec": {"hard": {"pods": "1000"}}},
    "deployments": lambda n, ns: workload(n, replicas=1),
    "replicasets": lambda n, ns: workload(n, replicas=1),
    "daemonsets": lambda n, ns: workload(n),
    "statefulsets": lambda n, ns: workload(n, replicas=1, serviceName=n),
    "replicationcontrollers": lambda n, ns: {"spec": {"replicas": 1, "selector": {"app": n},
                                                      "template": template(n)}},
    "controllerrevisions": lambda n, ns: {"revision": 1, "data": {"spec": {"x": 1}}},
    "jobs": lambda n, ns: {"spec": {"template": template(n, "Never")}},
    "cronjobs": lambda n, ns: {"spec": {"schedule": "*/5 * * * *",
                                        "jobTemplate": {"spec": {"template": template(n, "Never")}}}},
    "ingresses": lambda n, ns: {"spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}},
    "horizontalpodautoscalers": lambda n, ns: {"spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 1, "maxReplicas": 3}},
    "poddisruptionbudgets": lambda n, ns: {"spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": n}}}},
    "roles": lambda n, ns: {"rules": RULES},
    "clusterroles": lambda n, ns: {"rules": RULES},
    "rolebindings": lambda n, ns: {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
                                   "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}]},
    "clusterrolebindings": lambda n, ns: {
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}]},
    "leases": lambda n, ns: {"spec": {"holderIdentity": "conformance", "leaseDurationSeconds": 15}},
    "validatingadmissionpolicies": lambda n, ns: {"spec": VAP_SPEC},
    "validatingadmissionpolicybindings": lambda n, ns: {"spec": {"policyName": "p", "validationActions": ["Deny"]}},
}


GROUPS = {"CoreV1Api": "", "EventsV1Api": "events.k8s.io", "AppsV1Api": "apps", "BatchV1Api": "batch",
          "NetworkingV1Api": "networking.k8s.io", "AutoscalingV2Api": "autoscaling", "PolicyV1Api": "policy",
          "RbacAuthorizationV1Api": "rbac.authorization.k8s.io", "CoordinationV1Api": "coordination.k8s.io",
          "AdmissionregistrationV1Api": "admissionregistration.k8s.io"}


@dataclass(frozen=True)
class Kind:
    name: str  # a key of BODIES
    api: str  # the client's API class
    suffix: str  # the client's method suffix: create_namespaced_<suffix>
    namespaced: bool = True
    status: bool = False  # the real server serves <resource>/status
    scale: bool = False  # ... and <resource>/scale
    collection: bool = True  # ... and deletecollection

    @property
    def group(self) -> str:
        """The API group (from the client's API class: AppsV1Api -> apps)."""
        return GROUPS[self.api]

    def fn(self, verb: str, api_client):
        scope = "namespaced_" if self.namespaced else ""
        verb, _, sub = verb.partition(":")
        tail = f"_{sub}" if sub else ""
        return getattr(getattr(client, self.api)(api_client), f"{verb}_{scope}{self.suffix}{tail}")

    def model(self, api_client):
        """The item model of the list operation (V1Pod for list_namespaced_pod)."""
        listed = inspect.signature(self.fn("list", api_client)).return_annotation
        return getattr(client.models, listed.__name__[:-len("List")])


# The real server's subresources: pkg/registry/*/rest storage (e.g. apps/deployment/storage).
KINDS = [
    Kind("configmaps", "CoreV1Api", "config_map"),
    Kind("secrets", "CoreV1Api", "secret"),
    Kind("serviceaccounts", "CoreV1Api", "service_account"),
    Kind("services", "CoreV1Api", "service", status=True),
    Kind("pods", "CoreV1Api", "pod", status=True),
    Kind("events", "CoreV1Api", "event"),
    Kind("events.k8s.io", "EventsV1Api", "event"),
    Kind("deployments", "AppsV1Api", "deployment", status=True, scale=True),
    Kind("replicasets", "AppsV1Api", "replica_set", status=True, scale=True),
    Kind("daemonsets", "AppsV1Api", "daemon_set", status=True),
    Kind("statefulsets", "AppsV1Api", "stateful_set", status=True, scale=True),
    Kind("replicationcontrollers", "CoreV1Api", "replication_controller", status=True, scale=True),
    Kind("controllerrevisions", "AppsV1Api", "controller_revision"),
    Kind("jobs", "BatchV1Api", "job", status=True),
    Kind("cronjobs", "BatchV1Api", "cron_job", status=True),
    Kind("ingresses", "NetworkingV1Api", "ingress", status=True),
    Kind("horizontalpodautoscalers", "AutoscalingV2Api", "horizontal_pod_autoscaler", status=True),
    Kind("poddisruptionbudgets", "PolicyV1Api", "pod_disruption_budget", status=True),
    Kind("roles", "RbacAuthorizationV1Api", "role"),
    Kind("clusterroles", "RbacAuthorizationV1Api", "cluster_role", namespaced=False),
    Kind("rolebindings", "RbacAuthorizationV1Api", "role_binding"),
    Kind("clusterrolebindings", "RbacAuthorizationV1Api", "cluster_role_binding", namespaced=False),
    Kind("leases", "CoordinationV1Api", "lease"),
    Kind("validatingadmissionpolicies", "AdmissionregistrationV1Api", "validating_admission_policy",
         namespaced=False, status=True),
    Kind("validatingadmissionpolicybindings", "AdmissionregistrationV1Api", "validating_admission_policy_binding",
         namespaced=False),
    Kind("limitranges", "CoreV1Api", "limit_range"),
    Kind("resourcequotas", "CoreV1Api", "resource_quota", status=True),
    # Namespaces have no deletecollection (pkg/registry/core/namespace/storage: no DeleteCollection).
    Kind("namespaces", "CoreV1Api", "namespace", namespaced=False, status=True, collection=False),
]


def watch_events(list_fn, ns, name: str, rv: str, timeout: int = 4) -> list[dict]:
    """What ``Watch.stream`` yields for one object from ``rv`` until its DELETED (or the timeout)."""
    w = watch.Watch()
    args = (ns,) if ns else ()
    out = []
    deadline = time.monotonic() + timeout
    for ev in w.stream(list_fn, *args, field_selector=f"metadata.name={name}", resource_version=rv,
                       timeout_seconds=timeout):
        out.append(ev)
        if ev["type"] == "DELETED" or time.monotonic() > deadline:
            w.stop()
            break
    return out
