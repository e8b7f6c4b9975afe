"""Fixtures for the sandbox cluster tests.

By default every test runs against a sandbox started for the session
(``sandbox.testing.start_sandbox``) with short delays.  With ``MAE_TEST_KUBECONFIG``
set, the same tests run against that (real) cluster instead, and only the tests that
exercise sandbox-specific behaviour (image-tag failure modes, snapshots) are skipped.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid

import pytest
from kubernetes import client, config

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:  # the repo root, so `sandbox` imports without an install
    sys.path.insert(0, _ROOT)

from sandbox.testing import start_sandbox  # noqa: E402



from sandbox_helpers import REAL_KUBECONFIG, SANDBOX_OPTS  # noqa: E402


class Cluster:
    def __init__(self, kubeconfig: str, api: client.ApiClient, handle=None):
        self.kubeconfig = kubeconfig
        self.api = api
        self.handle = handle

    @property
    def is_sandbox(self) -> bool:
        return self.handle is not None


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    if REAL_KUBECONFIG:
        yield Cluster(REAL_KUBECONFIG, config.new_client_from_config(config_file=REAL_KUBECONFIG))
        return
    state = tmp_path_factory.mktemp("sandbox-session")
    with start_sandbox("test", state, **SANDBOX_OPTS) as sb:
        yield Cluster(sb.kubeconfig_path, sb.api_client(), sb)


@pytest.fixture
def sandbox_only(cluster):
    """The only allowed skip: sandbox-specific behaviour when pointed at a real cluster."""
    if REAL_KUBECONFIG:
        pytest.skip("sandbox-specific behaviour (MAE_TEST_KUBECONFIG points at a real cluster)")


@pytest.fixture
def core(cluster):
    return client.CoreV1Api(cluster.api)


@pytest.fixture
def apps(cluster):
    return client.AppsV1Api(cluster.api)


@pytest.fixture
def ns(core):
    name = "t-" + uuid.uuid4().hex[:10]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    try:
        core.delete_namespace(name)
    except client.ApiException:
        pass


@pytest.fixture
def kubectl(cluster, tmp_path):
    exe = shutil.which("kubectl")
    assert exe, "kubectl must be installed (it is the independent client these tests rely on)"
    cache = tmp_path / "kube-cache"

    def run(*args, timeout: float = 60, check: bool = True, stdin: str | None = None):
        cmd = [exe, "--kubeconfig", cluster.kubeconfig, "--cache-dir", str(cache), *args]
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run
