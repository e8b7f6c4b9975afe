"""What runs in an app's namespace, read from the cluster: a Deployment, ReplicaSets, pods,
events, a pod's log.

Reads only, with the cluster service's credentials (the gateway never holds them):
paged LISTs by label selector, a Deployment by name (the deployer may ``get`` but not
``list`` Deployments: k8s/operator/mke-rbac.yaml), and ``pods/log`` opened as a stream (``follow``)
whose body the caller relays as it arrives and closes when its reader leaves.
"""
from __future__ import annotations

from services.cluster.mke.client import ClusterClient
from services.cluster.mke.kinds import Kind

PODS = Kind("Pod", "v1", "pods")
EVENTS = Kind("Event", "v1", "events")
REPLICASETS = Kind("ReplicaSet", "apps/v1", "replicasets")
DEPLOYMENTS = Kind("Deployment", "apps/v1", "deployments")


def pods(client: ClusterClient, namespace: str, selector: str) -> list[dict]:
    return client.list(PODS, namespace, label_selector=selector)


def replicasets(client: ClusterClient, namespace: str, selector: str) -> list[dict]:
    return client.list(REPLICASETS, namespace, label_selector=selector)


def deployment(client: ClusterClient, namespace: str, name: str) -> dict | None:
    return client.get(DEPLOYMENTS, namespace, name)


def events(client: ClusterClient, namespace: str) -> list[dict]:
    return client.list(EVENTS, namespace)


def open_log(client: ClusterClient, namespace: str, pod: str, container: str | None, *, tail: int | None,
             since_seconds: int | None, follow: bool, idle_seconds: float):
    """The pod's log as a urllib3 response to read with ``.stream()`` (and ``release_conn()``)."""
    query = {}
    if container:
        query["container"] = container
    if tail is not None:
        query["tailLines"] = str(tail)
    if since_seconds is not None:
        query["sinceSeconds"] = str(since_seconds)
    if follow:
        query["follow"] = "true"
    return client.stream(PODS.path(namespace, pod) + "/log", query, read_timeout=idle_seconds)
