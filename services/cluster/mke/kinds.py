"""The kinds MAE puts on clusters and where each lives in the Kubernetes API.

A static table rather than the dynamic client: discovery costs several round
trips per cluster over slow public links, and MAE only ever renders these kinds.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    kind: str
    api_version: str
    plural: str
    namespaced: bool = True
    # Top-level fields MAE sets and therefore compares (besides labels/annotations).
    fields: tuple[str, ...] = ("spec",)

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced:
            if not namespace:
                raise ValueError(f"{self.kind} needs a namespace")
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return base + (f"/{name}" if name else "")

    def collection(self, namespace: str | None = None) -> str:
        """Where to list them: in one namespace, or (namespaced kinds) across all."""
        if namespace or not self.namespaced:
            return self.path(namespace)
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        return f"{base}/{self.plural}"


KINDS = {k.kind: k for k in (
    Kind("Namespace", "v1", "namespaces", namespaced=False, fields=()),
    Kind("ConfigMap", "v1", "configmaps", fields=("data", "binaryData")),
    Kind("Secret", "v1", "secrets", fields=("data", "stringData", "type")),
    Kind("ServiceAccount", "v1", "serviceaccounts", fields=()),
    Kind("Service", "v1", "services"),
    Kind("Deployment", "apps/v1", "deployments"),
    Kind("HorizontalPodAutoscaler", "autoscaling/v2", "horizontalpodautoscalers"),
    Kind("Ingress", "networking.k8s.io/v1", "ingresses"),
)}

# What MAE puts in every app namespace itself (never from a template: not in KINDS, so an
# apply request can not carry them).
NAMESPACE_DEFENCES = {k.kind: k for k in (
    Kind("ResourceQuota", "v1", "resourcequotas"),
    Kind("LimitRange", "v1", "limitranges"),
)}

# docs/contracts.md: ConfigMap/Secret, Service, Deployment, HPA, Ingress — what a
# Deployment mounts exists before it, and an Ingress routes to a Service that exists.
APPLY_ORDER = ["Namespace", "ServiceAccount", "ConfigMap", "Secret", "Service", "Deployment",
               "HorizontalPodAutoscaler", "Ingress"]


def kind_of(manifest: dict) -> Kind:
    name = manifest.get("kind") if isinstance(manifest, dict) else None
    if name not in KINDS:
        raise KeyError(name)
    return KINDS[name]


def ordered(manifests: list[dict], reverse: bool = False) -> list[dict]:
    """Stable sort by apply order; unknown kinds last (they fail individually)."""
    rank = {k: i for i, k in enumerate(APPLY_ORDER)}
    keyed = sorted(enumerate(manifests),
                   key=lambda p: (rank.get(p[1].get("kind") if isinstance(p[1], dict) else None, 99), p[0]))
    result = [m for _, m in keyed]
    return list(reversed(result)) if reverse else result
