"""A version's resources as a tree through MAE (issue 22): ``GET …/versions/<ver>/resources``
gives, per cluster, the Deployment, its ReplicaSets (revision, current) and each one's pods,
checked against what kubectl sees on the cluster — a client that shares nothing with MAE.
Runs against the sandboxes and against a real API server as ``test`` (the ``mae`` fixture),
whose deployer may ``get`` Deployments but not list them (k8s/operator/mke-rbac.yaml).

Who may read: any member (a viewer too); a user of another app gets 404, nobody logged in
401. A cluster that is down, or that hangs without answering, is an item that says so
(``reachable: false`` and why), within seconds — never a 500 or a hung request.
"""
import os
import signal
import time
import uuid

import pytest
from jsonschema import Draft202012Validator

from gateway import openapi
from gateway.service import GatewayService
from tests.e2e.cluster_objects import get
from tests.e2e.conftest import Api
from tests.kube import kubectl_json
from tests.waiting import waiter

wait_for = waiter(timeout=90.0, interval=0.3)
REVISION = "deployment.kubernetes.io/revision"
# What the OpenAPI document promises (schemathesis fuzzes by it): every answer here must match.
PROMISED = Draft202012Validator(openapi.build(GatewayService)["paths"][
    "/api/v1/apps/{app}/services/{svc}/versions/{ver}/resources"]["get"]["responses"]["200"]["content"][
    "application/json"]["schema"])


def finished(client, record_id):
    record = wait_for(lambda: (lambda r: r if r.get("finished_at") else None)(client.get(f"/records/{record_id}").json()),
                      what=f"record {record_id} to finish")
    assert record["status"] == "succeeded", record
    return record


def tree(client, app, ver="v1", **params):
    answer = client.get(f"/apps/{app}/services/web/versions/{ver}/resources", params=params)
    assert answer.status_code == 200, answer.text
    PROMISED.validate(answer.json())
    return answer.json()["items"]


@pytest.fixture(scope="module")
def team(mae):
    run = uuid.uuid4().hex[:4]
    people = {role: mae.login(f"res-{role}-{run}") for role in ("owner", "viewer", "outsider")}
    app, other = f"res-{uuid.uuid4().hex[:6]}", f"res-out-{run}"
    owner = people["owner"]
    assert owner.post("/apps", json={"name": app}).status_code == 201
    assert owner.put(f"/apps/{app}/members/res-viewer-{run}", json={"role": "viewer"}).status_code == 200
    assert people["outsider"].post("/apps", json={"name": other}).status_code == 201
    assert owner.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    made = owner.post(f"/apps/{app}/services/web/versions",
                      json={"name": "v1", "image": "nginx:1.25", "port": 80, "replicas": 2})
    assert made.status_code == 201, made.text
    sent = owner.post(f"/apps/{app}/services/web/versions/v1/deploy", json={"clusters": ["test"]})
    assert sent.status_code == 202, sent.text
    finished(owner, sent.json()["record_id"])
    return {**people, "app": app, "other": other, "mae": mae}


def test_the_tree_is_what_the_cluster_has_and_follows_a_restart(team):
    owner, app, test = team["owner"], team["app"], team["mae"].clusters["test"]
    items = tree(owner, app)
    assert [(i["cluster"], i["env"], i["reachable"]) for i in items] == [("test", "test", True)]
    item = items[0]
    deployment = get(test, "deployment", "web-v1", "-n", app)
    assert item["deployment"]["name"] == "web-v1"
    assert item["deployment"]["generation"] == deployment["metadata"]["generation"]
    assert item["deployment"]["replicas"]["desired"] == 2
    wait_for(lambda: tree(owner, app)[0]["deployment"]["replicas"]["available"] == 2, what="2 available")
    conditions = {c["type"]: c["status"] for c in tree(owner, app)[0]["deployment"]["conditions"]}
    assert conditions.get("Available") == "True", conditions

    def settled(revisions):
        """The tree once it shows ``revisions`` ReplicaSets and the current one's 2 pods ready."""
        item = tree(owner, app)[0]
        sets = item["replicasets"]
        current = [r for r in sets if r["current"]]
        if len(sets) != revisions or len(current) != 1 or len(current[0]["pods"]) != 2 \
                or not all(p["ready"] for p in current[0]["pods"]) or any(r["pods"] for r in sets if not r["current"]):
            return None
        return item

    item = wait_for(lambda: settled(1), what="one ReplicaSet with 2 ready pods")
    on_cluster = kubectl_json("-n", app, "get", "replicasets", "-l", "mae.io/service=web,mae.io/version=v1",
                              kubeconfig=test["kubeconfig"], timeout=30)["items"]
    (rs,) = item["replicasets"]
    assert [(r["metadata"]["name"], int(r["metadata"]["annotations"][REVISION])) for r in on_cluster] == \
        [(rs["name"], rs["revision"])]
    pods = kubectl_json("-n", app, "get", "pods", "-l", "mae.io/version=v1", kubeconfig=test["kubeconfig"],
                        timeout=30)["items"]
    running = {p["metadata"]["name"]: p for p in pods if not p["metadata"].get("deletionTimestamp")}
    assert sorted(p["name"] for p in rs["pods"]) == sorted(running)
    for p in rs["pods"]:
        assert p["phase"] == "Running" and p["restarts"] == 0 and "reason" not in p
        assert p["created_at"] == running[p["name"]]["metadata"]["creationTimestamp"]
        assert p["node"] == running[p["name"]]["spec"]["nodeName"]

    sent = owner.post(f"/apps/{app}/services/web/versions/v1/restart", json={"clusters": ["test"]})
    assert sent.status_code == 202, sent.text
    finished(owner, sent.json()["record_id"])
    item = wait_for(lambda: settled(2), what="the restart's ReplicaSet current with 2 ready pods")
    new, old = item["replicasets"]
    assert new["current"] and not old["current"] and new["revision"] > old["revision"] == rs["revision"]
    assert old["name"] == rs["name"] and old["replicas"]["desired"] == 0 and new["replicas"]["desired"] == 2
    assert get(test, "deployment", "web-v1", "-n", app)["metadata"]["annotations"][REVISION] == str(new["revision"])
    assert not {p["name"] for p in new["pods"]} & {p["name"] for p in rs["pods"]}

    assert tree(owner, app, cluster="test") == tree(owner, app)
    missing = owner.get(f"/apps/{app}/services/web/versions/v1/resources", params={"cluster": "prod"})
    assert missing.status_code == 404 and "prod" in missing.json()["error"]["message"]
    bad = owner.get(f"/apps/{app}/services/web/versions/v1/resources", params={"cluster": "Not_A_Name"})
    assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "cluster"


def test_a_version_never_deployed_has_no_tree_and_an_unknown_one_is_404(team):
    owner, app = team["owner"], team["app"]
    made = owner.post(f"/apps/{app}/services/web/versions", json={"name": "v9", "image": "nginx:1.25", "port": 80})
    assert made.status_code == 201, made.text
    assert tree(owner, app, "v9") == []
    assert owner.get(f"/apps/{app}/services/web/versions/nope/resources").status_code == 404


def test_members_read_it_others_do_not(team):
    app, other, mae = team["app"], team["other"], team["mae"]
    assert tree(team["viewer"], app) == tree(team["owner"], app)
    for path in (f"/apps/{app}/services/web/versions/v1/resources",
                 f"/apps/{app}/services/web/versions/v1/resources?cluster=test"):
        refused = team["outsider"].get(path)
        assert refused.status_code == 404, refused.text
        assert "web-v1" not in refused.text and "replicasets" not in refused.text
    anonymous = Api(mae.stack.url).get(f"/apps/{app}/services/web/versions/v1/resources")
    assert anonymous.status_code == 401
    # and the other way round: the owner of this app reads nothing of the outsider's
    assert team["owner"].get(f"/apps/{other}/services/web/versions/v1/resources").status_code == 404


def test_a_cluster_down_or_hanging_is_an_item_that_says_so_within_seconds(team, mae):
    stack, owner, app = mae.stack, team["owner"], team["app"]
    name = f"gone{uuid.uuid4().hex[:4]}"
    info = stack.start_sandbox(name, 0, ready_delay=0.2)
    stack.register_cluster(mae.admin.token, name, "prod", info)
    pid = int((stack.pid_dir / f"sandbox-{name}.pid").read_text())   # ours
    try:
        wait_for(lambda: kubectl_json("get", "namespace", app, kubeconfig=str(stack.sandbox_dir(name) / "kubeconfig"),
                                      timeout=30), what=f"namespace {app} on {name}")
        sent = owner.post(f"/apps/{app}/services/web/versions/v1/deploy", json={"clusters": [name]})
        assert sent.status_code == 202, sent.text
        wait_for(lambda: any(i["cluster"] == name and i["reachable"] and i["replicasets"] for i in tree(owner, app)),
                 what=f"the tree on {name}")
        os.kill(pid, signal.SIGSTOP)   # it accepts connections and never answers
        started = time.monotonic()
        items = {i["cluster"]: i for i in tree(owner, app)}
        assert time.monotonic() - started < 12
        assert items["test"]["reachable"] and items["test"]["deployment"]["name"] == "web-v1"
        hung = items[name]
        assert hung["reachable"] is False and hung["deployment"] is None and hung["replicasets"] == []
        assert hung["error"].startswith("Timeout"), hung
        _end(stack, name, pid)
        wait_for(lambda: tree(owner, app, cluster=name)[0].get("error", "").startswith("Unreachable"),
                 what=f"{name} to refuse connections")
    finally:
        _end(stack, name, pid)
        assert mae.admin.delete(f"/clusters/{name}").status_code == 204


def _end(stack, name: str, pid: int) -> None:
    """Stop the sandbox this test started, stopped (SIGSTOP) or not."""
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        return
    stack.stop(f"sandbox-{name}")
