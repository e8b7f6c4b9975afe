"""Fixtures for the cluster tests: every test here runs twice, against the sandbox and
against the real control plane (tests/realkube/, the ``real_kube`` session fixture) —
one suite, so where the two differ the real one shows it. Tests of behaviour only the
sandbox has (image-tag failure modes on its own kubelet, snapshots, its own serving) are
marked ``sandbox_only`` and run against the sandbox alone. With ``MAE_TEST_KUBECONFIG``
set, the "real" cluster is that kubeconfig's instead of the local control plane.
"""
from __future__ import annotations

import os
import sys

import pytest
from kubernetes import client, config

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:  # the repo root, so `sandbox` imports without an install
    sys.path.insert(0, _ROOT)

from sandbox.testing import start_sandbox  # noqa: E402
from sandbox_helpers import REAL_KUBECONFIG, SANDBOX_OPTS  # noqa: E402
from tests.kube import fresh_namespace, kubectl_for  # noqa: E402


class Cluster:
    def __init__(self, kubeconfig: str, api: client.ApiClient, handle=None):
        self.kubeconfig = kubeconfig
        self.api = api
        self.handle = handle

    @property
    def is_sandbox(self) -> bool:
        return self.handle is not None


def pytest_configure(config):
    config.addinivalue_line("markers", "sandbox_only: behaviour only the sandbox has; runs against it alone")


def pytest_generate_tests(metafunc):
    if "cluster" in metafunc.fixturenames:
        kinds = ["sandbox"] if metafunc.definition.get_closest_marker("sandbox_only") else ["sandbox", "real"]
        metafunc.parametrize("cluster", kinds, indirect=True, scope="session")


@pytest.fixture(scope="session")
def sandbox_cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("sandbox-session")
    with start_sandbox("test", state, **SANDBOX_OPTS) as sb:
        yield Cluster(sb.kubeconfig_path, sb.api_client(), sb)


@pytest.fixture(scope="session")
def cluster(request):
    if request.param == "sandbox":
        return request.getfixturevalue("sandbox_cluster")
    if REAL_KUBECONFIG:
        return Cluster(REAL_KUBECONFIG, config.new_client_from_config(config_file=REAL_KUBECONFIG))
    real = request.getfixturevalue("real_kube")
    return Cluster(real.kubeconfig_path, real.api_client())


@pytest.fixture
def core(cluster):
    return client.CoreV1Api(cluster.api)


@pytest.fixture
def apps(cluster):
    return client.AppsV1Api(cluster.api)


@pytest.fixture
def ns(core):
    yield from fresh_namespace(core, "t-", 10)


@pytest.fixture
def kubectl(cluster, tmp_path):
    """``kubectl(*args, timeout=60, check=True, stdin=None)`` on this cluster (tests/kube.py)."""
    return kubectl_for(cluster.kubeconfig, tmp_path)
