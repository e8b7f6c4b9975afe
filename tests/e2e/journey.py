"""Shared by the CLI and console tests: a test cluster to deploy to, when the
deploy and clusters APIs are in this gateway. Idempotent through the API, so both
test modules may ask for it in one session."""
from __future__ import annotations

import time

import pytest


def deploys_available(stack) -> bool:
    import requests

    doc = requests.get(stack.url + "/api/v1/openapi.json", timeout=10).json()
    paths = doc.get("paths", {})
    return ("/api/v1/apps/{app}/services/{svc}/versions/{ver}/deploy" in paths
            and any(p.endswith("/rollback") and p.startswith("/api/v1/records/") for p in paths)
            and "/api/v1/clusters" in paths)


def ensure_test_cluster(stack, admin) -> str:
    """The name of a registered, healthy `test` cluster; starts a sandbox if none."""
    if not deploys_available(stack):
        pytest.skip("the deploy API is not in this gateway yet")
    clusters = admin.get("/clusters").json().get("items", [])
    found = [c for c in clusters if c.get("env") == "test"]
    if not found:
        if not hasattr(stack, "start_clusters"):
            pytest.skip("this stack cannot start sandbox clusters yet")
        stack.start_clusters(admin.token, clusters=[("ui-test", "test", 0)])
        name = "ui-test"
    else:
        name = found[0]["name"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        c = admin.get(f"/clusters/{name}").json()
        if c.get("healthy"):
            return name
        time.sleep(0.5)
    return name  # not reported healthy yet; deploys still work, the operator catches up
