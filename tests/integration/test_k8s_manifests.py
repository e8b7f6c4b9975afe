"""k8s/operator/ applied to a sandbox with plain kubectl, as a cluster admin would (README).

kubectl is a client nobody here wrote: if it accepts the manifests and the objects come
out as written, so would a real API server's (the sandbox serves RBAC as stored objects
and does not enforce them — sandbox/README.md — so this checks the manifests, not RBAC).
The operator's image (mae:latest) is "pulled" like any other tag in the sandbox, so its
Deployment rolls out; that it then reports is tested end to end in tests/e2e.
"""
import json
from functools import partial
from pathlib import Path

import pytest
import yaml

from sandbox.testing import start_sandbox
from tests.kube import kubectl

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "k8s" / "operator"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with start_sandbox("manifests", tmp_path_factory.mktemp("manifests"), ready_delay=0.2,
                       no_persist=True) as sb:
        yield sb


def declared():
    """Every object in k8s/operator/*.yaml (kustomization.yaml lists them), by file name."""
    objects = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return objects


def test_kubectl_applies_every_manifest_and_the_operator_rolls_out(sandbox):
    admin = partial(kubectl, kubeconfig=sandbox.kubeconfig_path)
    objects = declared()
    kinds = {o["kind"] for o in objects}
    # what the issue asks the directory to hold; if a file is dropped, this says so
    assert {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment", "Namespace"} <= kinds

    out = admin("apply", "-k", str(MANIFESTS))
    assert out.returncode == 0, out.stderr
    assert len([line for line in out.stdout.splitlines() if line.strip()]) == len(objects), out.stdout
    # The how-to's step 2: the report token Secret the operator mounts (yaml, not
    # `kubectl create secret`, which sends protobuf the sandbox does not speak).
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mae-operator", "namespace": "mae-system"},
              "stringData": {"report-token": "mae_r_example"}}
    assert admin("apply", "-f", "-", stdin=json.dumps(secret)).returncode == 0

    for obj in objects:
        meta = obj["metadata"]
        where = ["-n", meta["namespace"]] if meta.get("namespace") else []
        got = admin("get", f"{obj['kind'].lower()}.{obj['apiVersion'].split('/')[0]}"
                      if "/" in obj["apiVersion"] else obj["kind"].lower(), meta["name"], *where, "-o", "json")
        assert got.returncode == 0, f"{obj['kind']} {meta['name']}: {got.stderr}"
        live = json.loads(got.stdout)
        for field in ("rules", "roleRef", "subjects"):  # RBAC came through as written
            if field in obj:
                assert live[field] == obj[field], (obj["kind"], field)

    rollout = admin("rollout", "status", "deployment/mae-operator", "-n", "mae-system",
                      "--timeout=60s")
    assert rollout.returncode == 0, rollout.stderr
    assert "successfully rolled out" in rollout.stdout

    # Re-applying identical manifests changes nothing (an admin re-running the how-to).
    again = admin("apply", "-k", str(MANIFESTS))
    assert again.returncode == 0 and all(line.endswith("unchanged") for line in again.stdout.splitlines()), \
        again.stdout
