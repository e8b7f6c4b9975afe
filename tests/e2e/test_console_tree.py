"""The app page's live resource trees in the browser (issue 22): a version deployed while the
page is open shows up as Deployment → ReplicaSet → pod and moves to the pod Ready without a
reload, refreshed every second while something is in progress and every ten seconds once
settled, until the page is left (the scenario: ``console_tree_scenarios.app_tree``).

The cluster is a sandbox of its own whose ``:slow`` pods get ready 15 s after they start,
so the page has time to show them not ready first; what the page showed is then checked
with kubectl on that cluster."""
import uuid

from tests.e2e.conftest import OPERATOR_OPTS, SANDBOX_OPTS
from tests.e2e.test_console import scenario, unique
from tests.kube import kubectl_json
from tests.waiting import waiter

wait_for = waiter(timeout=90.0, interval=0.3)


def test_the_app_page_tree_follows_a_deploy_to_the_ready_pod_live(stack, admin, login, clusters):
    name = f"slow{uuid.uuid4().hex[:4]}"
    info = stack.start_sandbox(name, 0, **{**SANDBOX_OPTS, "slow_delay": 15})
    try:
        stack.register_cluster(admin.token, name, "test", info)
        stack.start_operator(name, **OPERATOR_OPTS)
        owner = login(f"tree-{uuid.uuid4().hex[:4]}")
        app = unique("tree")
        assert owner.post("/apps", json={"name": app}).status_code == 201
        assert owner.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
        made = owner.post(f"/apps/{app}/services/web/versions",
                          json={"name": "v1", "image": "registry.example.com/web:slow", "port": 80, "replicas": 1})
        assert made.status_code == 201, made.text
        kubeconfig = str(stack.sandbox_dir(name) / "kubeconfig")
        wait_for(lambda: kubectl_json("get", "namespace", app, kubeconfig=kubeconfig, timeout=30),
                 what=f"namespace {app} on {name}")

        scenario("app_tree", timeout=400, module="tests.e2e.console_tree_scenarios", url=stack.url,
                 token=owner.token, app=app, cluster=name)

        assert [r["action"] for r in owner.get(f"/apps/{app}/records").json()["items"]] == ["restart", "deploy"]
        pods = kubectl_json("-n", app, "get", "pods", "-l", "mae.io/version=v1", kubeconfig=kubeconfig,
                            timeout=30)["items"]
        assert pods and all(p["spec"]["nodeName"] for p in pods)
    finally:
        stack.stop(f"operator-{name}")
        stack.stop(f"sandbox-{name}")
        assert admin.delete(f"/clusters/{name}").status_code == 204
