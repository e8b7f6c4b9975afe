"""Reading a cluster's objects from an e2e test, and playing someone who takes an app's
namespace away from MAE (kubectl through ``tests.kube.on_cluster``)."""
from __future__ import annotations

import json

import pytest

from tests.kube import on_cluster


def get(info, *args):
    """``kubectl get <args> -o json`` on the cluster, or ``None`` if it is not there."""
    out = on_cluster(info, "get", *args, "-o", "json")
    return json.loads(out.stdout) if out.returncode == 0 else None


def replace_namespace_with_theirs(info, name: str, timeout: str = "60s") -> None:
    """Delete MAE's namespace ``name`` and create one of the same name without MAE's mark.
    MAE's tend heals a deleted namespace: if it re-creates it first, again (five times)."""
    for _ in range(5):
        out = on_cluster(info, "delete", "namespace", name, "--wait=true", f"--timeout={timeout}")
        assert out.returncode == 0, out.stderr
        theirs = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        made = on_cluster(info, "create", "-f", "-", stdin=json.dumps(theirs))  # create: never MAE's patched
        if made.returncode == 0:
            return
        assert "AlreadyExists" in made.stderr, made.stderr
    pytest.fail("MAE re-created the namespace before kubectl could, five times")
