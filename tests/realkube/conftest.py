"""Fixtures for the real-control-plane tier's own tests; the session's control plane
itself (``real_kube``) is in tests/conftest.py, shared with every suite that runs against
both the sandbox and the real API server."""
from __future__ import annotations

import functools
import uuid

import pytest

from tests.kube import kubectl as run_kubectl


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
    from kubernetes import client
    name = "rk-" + uuid.uuid4().hex[:8]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    try:
        core.delete_namespace(name)
    except client.ApiException:
        pass


@pytest.fixture
def kubectl(real_kube, tmp_path):
    """``kubectl(*args, timeout=60, check=True)`` as the control plane's admin (tests/kube.py)."""
    return functools.partial(run_kubectl, kubeconfig=real_kube.kubeconfig_path, cache_dir=tmp_path / "kube-cache",
                             check=True)
