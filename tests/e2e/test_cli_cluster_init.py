"""`mae cluster init` against a sandbox cluster of the test's own and the e2e stack: what it
creates is checked with kubectl against k8s/operator/mke-rbac.yaml, the registration through
MAE's API, and a second run updates instead of failing.

The sandbox has no ServiceAccount token controller and no TokenRequest API (it accepts one
admin token only), so the test plays the controller: once the CLI has created the token
Secret, it fills it with a token the sandbox accepts — as kube-controller-manager does on a
real cluster. Without it the CLI falls back to TokenRequest, which the sandbox refuses: the
last test shows that failure is a clear message that leaves MAE's registration as it was."""
import base64
import json
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from tests.e2e.test_cli import run
from tests.kube import kubectl, kubectl_json

RBAC = Path(__file__).resolve().parents[2] / "k8s" / "operator" / "mke-rbac.yaml"
MANIFESTS = [d for d in yaml.safe_load_all(RBAC.read_text()) if d]


def of_kind(kind):
    return next(m for m in MANIFESTS if m["kind"] == kind)


@pytest.fixture
def target(stack, admin):
    name = "init-" + uuid.uuid4().hex[:5]
    info = stack.start_sandbox(name, 0, ready_delay=0.2)
    yield {**info, "name": name, "kubeconfig": str(stack.sandbox_dir(name) / "kubeconfig")}
    admin.delete(f"/clusters/{name}")
    stack.stop(f"sandbox-{name}")


def play_token_controller(target, stop: threading.Event):
    """Fill mae-system/mae-deployer-token with a token the sandbox authenticates, once it exists."""
    token = base64.b64encode(target["token"].encode()).decode()
    ca = base64.b64encode(Path(target["ca_path"]).read_bytes()).decode()
    while not stop.is_set():
        found = kubectl_json("-n", "mae-system", "get", "secret", "mae-deployer-token", kubeconfig=target["kubeconfig"])
        if found is not None and not (found.get("data") or {}).get("token"):
            kubectl("-n", "mae-system", "patch", "secret", "mae-deployer-token", "--type=merge", "-p",
                    json.dumps({"data": {"token": token, "ca.crt": ca}}), kubeconfig=target["kubeconfig"])
        time.sleep(0.2)


def init(home, stack, token, target, *extra):
    return run(home, "cluster", "init", "--kubeconfig", target["kubeconfig"], "--name", target["name"],
               "--env", "test", "-o", "json", *extra, url=stack.url, token=token, timeout=180)


def post_reports(stack, name, token):
    return requests.post(f"{stack.url}/api/v1/clusters/{name}/reports", json={"reports": []},
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_cluster_init_creates_maes_access_registers_the_cluster_and_is_repeatable(
        stack, admin, login, target, tmp_path):
    kc = target["kubeconfig"]
    # a plain user is refused before anything is made on the cluster
    user = login("init-user-" + uuid.uuid4().hex[:4])
    refused = init(tmp_path, stack, user.token, target)
    assert refused.returncode == 1 and "platform administrator" in refused.stderr, refused.stderr
    assert kubectl_json("get", "namespace", "mae-system", kubeconfig=kc) is None

    stop = threading.Event()
    filler = threading.Thread(target=play_token_controller, args=(target, stop), daemon=True)
    filler.start()
    try:
        first = init(tmp_path, stack, admin.token, target)
        assert first.returncode == 0, first.stderr
        answer = json.loads(first.stdout)
        assert answer["done"] == "registered" and answer["token_source"] == "secret"
        assert {o["kind"]: o["done"] for o in answer["objects"]} == {m["kind"]: "created" for m in MANIFESTS}
        assert answer["report_token"].startswith("mae_r_") and target["name"] in answer["operator_command"]

        # what it made, as kubectl sees it: exactly the access of mke-rbac.yaml
        assert kubectl_json("get", "namespace", "mae-system", kubeconfig=kc)
        assert kubectl_json("-n", "mae-system", "get", "serviceaccount", "mae-deployer", kubeconfig=kc)
        role = kubectl_json("get", "clusterrole", "mae-deployer", kubeconfig=kc)
        assert role["rules"] == of_kind("ClusterRole")["rules"]
        binding = kubectl_json("get", "clusterrolebinding", "mae-deployer", kubeconfig=kc)
        assert binding["subjects"] == of_kind("ClusterRoleBinding")["subjects"]
        assert binding["roleRef"] == of_kind("ClusterRoleBinding")["roleRef"]
        policy = kubectl_json("get", "validatingadmissionpolicy", "mae-deployer", kubeconfig=kc)
        assert policy["spec"]["validations"] == of_kind("ValidatingAdmissionPolicy")["spec"]["validations"]
        assert kubectl_json("get", "validatingadmissionpolicybinding", "mae-deployer", kubeconfig=kc)
        kept = kubectl_json("-n", "mae-system", "get", "secret", "mae-operator", kubeconfig=kc)
        assert base64.b64decode(kept["data"]["report-token"]).decode() == answer["report_token"]

        # ... and MAE has it, with a report token its operator can use
        detail = admin.get(f"/clusters/{target['name']}").json()
        assert detail["env"] == "test" and detail["server"] == target["url"]
        assert post_reports(stack, target["name"], answer["report_token"]).status_code == 202

        # someone loosens MAE's ClusterRole by hand; a second run puts it back and re-registers
        kubectl("patch", "clusterrole", "mae-deployer", "--type=json", "-p",
                json.dumps([{"op": "add", "path": "/rules/-",
                             "value": {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}}]),
                kubeconfig=kc, check=True)
        second = init(tmp_path, stack, admin.token, target)
        assert second.returncode == 0, second.stderr
        again = json.loads(second.stdout)
        done = {o["kind"]: o["done"] for o in again["objects"]}
        assert done["ClusterRole"] == "updated" and done["Secret"] == "kept" and done["Namespace"] == "unchanged"
        assert again["done"] == "credentials replaced" and again["report_token"] != answer["report_token"]
        assert kubectl_json("get", "clusterrole", "mae-deployer", kubeconfig=kc)["rules"] == \
            of_kind("ClusterRole")["rules"]
        assert admin.get(f"/clusters/{target['name']}").json()["credentials_generation"] == 2
        for token in (again["report_token"], answer["report_token"]):  # the old one: for ten minutes
            assert post_reports(stack, target["name"], token).status_code == 202
        kept = kubectl_json("-n", "mae-system", "get", "secret", "mae-operator", kubeconfig=kc)
        assert base64.b64decode(kept["data"]["report-token"]).decode() == again["report_token"]
    finally:
        stop.set()
        filler.join(5)

    # no token controller and no TokenRequest: a clear refusal, MAE's registration unchanged
    kubectl("-n", "mae-system", "delete", "secret", "mae-deployer-token", kubeconfig=kc, check=True)
    third = init(tmp_path, stack, admin.token, target, "--token-timeout", "1")
    assert third.returncode == 1 and "TokenRequest" in third.stderr and "Traceback" not in third.stderr
    assert admin.get(f"/clusters/{target['name']}").json()["credentials_generation"] == 2
