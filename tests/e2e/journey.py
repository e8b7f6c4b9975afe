"""Shared by the CLI and console tests: the deploy journey needs the deploy API in
this gateway and a `test` cluster, which the e2e conftest's session ``clusters``
fixture starts (sandbox + operator). It is asked for only when deploys exist, so
the other tests never pay for the sandboxes."""
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


def ensure_test_cluster(request, stack, admin) -> str:
    """The name of the registered `test` cluster, once it reports healthy."""
    if not deploys_available(stack):
        pytest.skip("the deploy API is not in this gateway yet")
    started = request.getfixturevalue("clusters")
    name = next(n for n, info in started.items() if info.get("env") == "test")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if admin.get(f"/clusters/{name}").json().get("healthy"):
            break
        time.sleep(0.5)
    return name
