"""MAE's own access to a real cluster, exactly as a cluster admin grants it: the
deployer credential of ``k8s/operator/mke-rbac.yaml`` for the cluster service and the
operator's service account of ``k8s/operator/operator.yaml`` — installed with kubectl
(the independent client) on the real API server, tokens minted by its controllers.
Whatever those manifests do not allow fails in the tests, not in a user's cluster.

mke-rbac.yaml carries a ValidatingAdmissionPolicy confining the deployer; the API server
loads a new policy a moment after it is stored, so ``install`` returns only once the
policy refuses what it must (a dry-run write into ``default`` as the deployer)."""
from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass

import yaml

from tests.kube import KubectlFailed, kubectl

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOYER_RBAC = os.path.join(_ROOT, "k8s", "operator", "mke-rbac.yaml")
OPERATOR = os.path.join(_ROOT, "k8s", "operator", "operator.yaml")
NAMESPACE = "mae-system"


POLICY = "mae-deployer"  # the ValidatingAdmissionPolicy (and its binding) of mke-rbac.yaml


@dataclass
class MaeAccess:
    deployer_token: str       # what MAE registers the cluster with
    operator_token: str       # what the operator watches with
    operator_kubeconfig: str  # a kubeconfig carrying the operator's token
    deployer_kubeconfig: str = ""  # a kubeconfig carrying the deployer's token


def _token_of(kubeconfig: str, secret: str, timeout: float = 30.0) -> str:
    """The token the ServiceAccount token controller writes into a service-account-token Secret."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            out = kubectl("-n", NAMESPACE, "get", "secret", secret, "-o", "jsonpath={.data.token}",
                          kubeconfig=kubeconfig, check=True).stdout
        except KubectlFailed:
            out = ""
        if out:
            return base64.b64decode(out).decode()
        time.sleep(0.2)
    raise TimeoutError(f"the token controller did not fill secret {NAMESPACE}/{secret}")


def refused_by_policy(stderr: str) -> bool:
    """Whether kubectl's error is the deployer's admission policy refusing (not RBAC, not validation)."""
    return f"ValidatingAdmissionPolicy '{POLICY}'" in stderr


def _wait_for_policy(deployer_kubeconfig: str, timeout: float = 60.0) -> None:
    """Until the policy is loaded, a dry-run ConfigMap in ``default`` is accepted (RBAC grants
    configmaps everywhere); once it is, the policy refuses it. Dry run: nothing is stored."""
    probe = ('{"apiVersion": "v1", "kind": "ConfigMap", '
             '"metadata": {"name": "mae-policy-probe", "namespace": "default"}}')
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        proc = kubectl("create", "--dry-run=server", "-f", "-", kubeconfig=deployer_kubeconfig, stdin=probe,
                       timeout=30)
        if proc.returncode != 0 and refused_by_policy(proc.stderr):
            return
        last = proc.stderr.strip() or proc.stdout.strip()
        time.sleep(0.2)
    raise TimeoutError(f"the ValidatingAdmissionPolicy {POLICY} of {DEPLOYER_RBAC} did not take effect within "
                       f"{timeout:g} s (last answer to the deployer's probe: {last})")


def install(handle, state_dir: str) -> MaeAccess:
    """Apply MAE's RBAC manifests as they ship (the operator's Deployment left out: the
    tests run the operator as a local process), wait until the deployer's admission policy
    is in force, and return the two tokens."""
    admin = handle.kubeconfig_path
    kubectl("apply", "-f", DEPLOYER_RBAC, kubeconfig=admin, check=True)
    with open(OPERATOR) as fh:
        docs = [d for d in yaml.safe_load_all(fh) if d and d.get("kind") != "Deployment"]
    docs.append({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
                 "metadata": {"name": "mae-operator-token", "namespace": NAMESPACE,
                              "annotations": {"kubernetes.io/service-account.name": "mae-operator"}}})
    kubectl("apply", "-f", "-", kubeconfig=admin, stdin=yaml.safe_dump_all(docs), check=True)
    deployer = _token_of(admin, "mae-deployer-token")
    operator = _token_of(admin, "mae-operator-token")
    path = handle.write_kubeconfig(os.path.join(state_dir, "operator.kubeconfig"), token=operator,
                                   user="mae-operator")
    deployer_path = handle.write_kubeconfig(os.path.join(state_dir, "deployer.kubeconfig"), token=deployer,
                                            user="mae-deployer")
    _wait_for_policy(deployer_path)
    return MaeAccess(deployer, operator, path, deployer_path)
