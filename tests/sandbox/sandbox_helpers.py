"""Helpers shared by the sandbox tests (kept out of conftest so tests can import them)."""
from __future__ import annotations

import os

from tests.waiting import waiter

REAL_KUBECONFIG = os.environ.get("MAE_TEST_KUBECONFIG")

# Real, tiny images so the suite also passes on a real cluster.
IMAGE_A = "registry.k8s.io/pause:3.9"
IMAGE_B = "registry.k8s.io/pause:3.10"
IMAGE_MISSING = "registry.k8s.io/pause:missing"

# log_rate: 20 simulated access-log lines a second (pods/log), so log tests wait little.
SANDBOX_OPTS = dict(ready_delay=0.2, slow_delay=30, backoff=0.3, snapshot_interval=1, log_rate=20)

wait_for = waiter(timeout=15.0, interval=0.05)


def deployment(name: str, image: str = IMAGE_A, replicas: int = 2, labels: dict | None = None, **spec) -> dict:
    labels = labels or {"app": name}
    body = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                 "template": {"metadata": {"labels": dict(labels)},
                              "spec": {"containers": [{"name": "app", "image": image}]}}},
    }
    body["spec"].update(spec)
    return body


def read_modify_replace(read, replace, mutate, attempts: int = 20):
    """Optimistic concurrency as real clients do it: controllers keep writing status,
    so a read-modify-write may lose the race (409) and is retried on a fresh read.
    Returns (the object sent, the answer)."""
    from kubernetes import client
    for _ in range(attempts):
        obj = read()
        mutate(obj)
        try:
            return obj, replace(obj)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
    raise AssertionError("still conflicting after retries")
