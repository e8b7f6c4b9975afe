"""Shared by the CLI and console tests: the deploy journey needs a `test` cluster,
which the e2e conftest's session ``clusters`` fixture starts (sandbox + operator);
it is asked for only by the journey tests, so the others never pay for it."""
from __future__ import annotations

import time


def ensure_test_cluster(request, stack, admin) -> str:
    """The name of the registered `test` cluster, once it reports healthy."""
    started = request.getfixturevalue("clusters")
    name = next(n for n, info in started.items() if info.get("env") == "test")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if admin.get(f"/clusters/{name}").json().get("healthy"):
            break
        time.sleep(0.5)
    return name
