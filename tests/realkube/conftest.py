"""Fixtures for the real-control-plane tier's own tests; the session's control plane
itself (``real_kube``) is in tests/conftest.py, shared with every suite that runs against
both the sandbox and the real API server."""
from __future__ import annotations

import pytest

from tests.kube import fresh_namespace, kubectl_for


@pytest.fixture(scope="session")
def kube_api(real_kube):
    client = real_kube.api_client()
    yield client
    client.close()


@pytest.fixture
def core(kube_api):
    from kubernetes import client
    return client.CoreV1Api(kube_api)


@pytest.fixture
def apps(kube_api):
    from kubernetes import client
    return client.AppsV1Api(kube_api)


@pytest.fixture
def ns(core):
    """A fresh namespace, deleted afterwards (the namespace controller and hollow node clean up)."""
    yield from fresh_namespace(core, "rk-", 8)


@pytest.fixture
def kubectl(real_kube, tmp_path):
    """``kubectl(*args, timeout=60, check=True)`` as the control plane's admin (tests/kube.py)."""
    return kubectl_for(real_kube.kubeconfig_path, tmp_path)
