"""Clusters end to end: the real stack, two sandbox clusters and their operators, over HTTP.

The tests that take ``mae`` run twice: with the sandboxes, and with a real API server
as ``test`` (tests/realkube/, MAE holding exactly the deployer token of
k8s/operator/mke-rbac.yaml). Namespaces are checked with kubectl and each cluster's
admin kubeconfig — a client that shares nothing with MAE.
"""
import uuid
from pathlib import Path

import requests
from kombu import Connection, Exchange, Queue
from nameko.standalone.rpc import ClusterRpcProxy

from shared.config import ROOT, load_config
from shared.timeutil import rfc3339, utcnow
from tests.kube import kubectl, kubectl_json
from tests.waiting import waiter

wait_for = waiter(timeout=30.0, interval=0.3)


def namespace_on(info, name):
    ns = kubectl_json("get", "namespace", name, kubeconfig=info["kubeconfig"], timeout=30)
    if ns is None:
        return None
    return None if ns.get("status", {}).get("phase") == "Terminating" else ns


def rpc_config(stack):
    config = load_config(ROOT / "config" / "test.yaml")
    config["AMQP_URI"] = stack.env["AMQP_URI"]
    return config


def new_app(owner, prefix="app"):
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    resp = owner.post("/apps", json={"name": name})
    assert resp.status_code == 201, resp.text
    return name


def registration(info, name, **overrides):
    body = {"name": name, "env": "test", "server": info["url"], "token": info["token"],
            "ca_cert": Path(info["ca_path"]).read_text()}
    body.update(overrides)
    return body


def test_registered_clusters_are_listed_to_any_user_without_credentials(clusters, admin, login, stack):
    user = login("cluster-viewer")
    for api in (admin, user):
        resp = api.get("/clusters")
        assert resp.status_code == 200
        items = {c["name"]: c for c in resp.json()["items"]}
        assert {"test", "prod"} <= set(items)
        assert items["test"]["env"] == "test" and items["prod"]["env"] == "prod"
        assert items["test"]["server"] == clusters["test"]["url"]
        for secret in (clusters["test"]["token"], clusters["prod"]["token"], "BEGIN CERTIFICATE", "mae_r_"):
            assert secret not in resp.text
        detail = api.get("/clusters/test")
        assert detail.status_code == 200 and "namespaces" in detail.json()
        assert clusters["test"]["token"] not in detail.text and "report_token" not in detail.text
    # the operators' heartbeats make both healthy
    wait_for(lambda: all(c["healthy"] and c["last_report_at"] for c in admin.get("/clusters").json()["items"]
                         if c["name"] in ("test", "prod")), 20, what="healthy clusters")
    assert user.post("/clusters", json=registration(clusters["test"], "nope")).status_code == 403
    assert user.delete("/clusters/test").status_code == 403
    assert admin.get("/clusters/no-such").status_code == 404


def test_bad_credentials_are_refused_with_the_clusters_own_message(mae):
    clusters, admin = mae.clusters, mae.admin  # the sandbox's, then a real API server as "test"
    resp = admin.post("/clusters", json=registration(clusters["test"], "badtoken", token="wrong-token"))
    assert resp.status_code == 422, resp.text
    assert "Unauthorized" in resp.json()["error"]["message"]
    wrong_ca = Path(clusters["prod"]["ca_path"]).read_text()
    resp = admin.post("/clusters", json=registration(clusters["test"], "badca", ca_cert=wrong_ca))
    assert resp.status_code == 422
    assert "certificate" in resp.json()["error"]["message"].lower()
    assert admin.post("/clusters", json=registration(clusters["test"], "Not_A_Label")).status_code == 422
    assert admin.post("/clusters", json=registration(clusters["test"], "test")).status_code == 409
    names = [c["name"] for c in admin.get("/clusters").json()["items"]]
    assert "badtoken" not in names and "badca" not in names


def test_an_app_gets_its_namespace_on_every_cluster_and_loses_it_on_delete(mae):
    clusters, login, admin = mae.clusters, mae.login, mae.admin
    owner = login("ns-owner")
    app = new_app(owner)
    for name in ("test", "prod"):
        ns = wait_for(lambda: namespace_on(clusters[name], app), 20, what=f"namespace {app} on {name}")
        assert ns["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "mae"
    summary = admin.get("/clusters/test").json()["namespaces"]
    assert summary["ok"] >= 1 and app not in [p["namespace"] for p in summary["pending"] + summary["failed"]]
    assert owner.delete(f"/apps/{app}").status_code in (200, 204)
    for name in ("test", "prod"):
        wait_for(lambda: namespace_on(clusters[name], app) is None, 20, what=f"{app} gone from {name}")


def test_a_new_cluster_gets_every_namespace_then_is_deleted(clusters, login, admin, stack):
    owner = login("ns-owner")
    apps = [new_app(owner, "fan") for _ in range(3)]
    info = stack.start_sandbox("third", 0, ready_delay=0.2, no_persist=True)
    try:
        resp = admin.post("/clusters", json=registration(info, "third"))
        assert resp.status_code == 201, resp.text
        body = resp.json()
        assert body["report_token"].startswith("mae_r_") and body["env"] == "test"
        assert "token" not in body and "ca_cert" not in body
        for app in apps:
            wait_for(lambda: namespace_on(info, app), 20, what=f"{app} on the new cluster")
        audit = admin.get("/admin/audit", params={"action": "cluster_registered"})
        assert audit.status_code == 200 and any(e["target"] == "cluster:third" for e in audit.json()["items"])
        assert admin.delete("/clusters/third").status_code == 204
        assert admin.get("/clusters/third").status_code == 404
        wait_for(lambda: any(e["target"] == "cluster:third" for e in
                             admin.get("/admin/audit", params={"action": "cluster_deleted"}).json()["items"]),
                 10, what="cluster_deleted audit entry")
    finally:
        stack.stop("sandbox-third")


def test_a_cluster_that_was_down_catches_up_when_it_returns(clusters, login, admin, stack):
    owner = login("ns-owner")
    prod = clusters["prod"]
    stack.stop("sandbox-prod")
    try:
        app = new_app(owner, "late")
        wait_for(lambda: namespace_on(clusters["test"], app), 20, what="namespace on test")

        def visible():
            detail = admin.get("/clusters/prod").json()
            waiting = [p for p in detail["namespaces"]["pending"] + detail["namespaces"]["failed"]
                       if p["namespace"] == app]
            return waiting and not detail["reachable"] and not detail["healthy"] and detail

        detail = wait_for(visible, 20, what="prod unreachable with the namespace waiting")
        assert detail["probe_error"]
    finally:
        stack.start_sandbox("prod", prod["port"], ready_delay=0.2, backoff=0.3, snapshot_interval=1)
    wait_for(lambda: namespace_on(prod, app), 30, what="namespace on prod after its return")
    wait_for(lambda: admin.get("/clusters/prod").json()["reachable"], 20, what="prod reachable again")


def _status_events(stack):
    """A queue bound to cluster.resource_status on the stack's broker, like a consumer service."""
    conn = Connection(stack.env["AMQP_URI"])
    queue = Queue(f"test-status-{uuid.uuid4().hex[:6]}", Exchange("cluster.events", type="topic", durable=True),
                  routing_key="resource_status", auto_delete=True)
    return conn, queue


def test_operator_reports_reach_mae_and_become_status_events(mae):
    clusters, login, stack = mae.clusters, mae.login, mae.stack
    owner = login("ns-owner")
    app = new_app(owner, "rep")
    test = clusters["test"]
    wait_for(lambda: namespace_on(test, app), 20, what="namespace")
    conn, queue = _status_events(stack)
    received = []
    with conn:
        bound = queue(conn.default_channel)
        bound.declare()
        manifest = {"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "web", "namespace": app,
                                 "labels": {"app.kubernetes.io/managed-by": "mae", "mae.io/app": app},
                                 "annotations": {"mae.io/record-id": "7"}},
                    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                             "template": {"metadata": {"labels": {"app": "web", "app.kubernetes.io/managed-by": "mae"}},
                                          "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}}
        out = kubectl("apply", "-f", "-", kubeconfig=test["kubeconfig"], stdin=manifest, timeout=30)
        assert out.returncode == 0, out.stderr

        def ready_event():
            while True:
                message = bound.get(no_ack=True)
                if message is None:
                    break
                event = message.payload
                # One report, or the reports of one intake (docs/contracts.md): one entry each.
                for data in event["data"]["reports"] if "reports" in event["data"] else [event["data"]]:
                    received.append({**event, "data": data})
            return [e for e in received if e["data"]["namespace"] == app
                    and e["data"]["replicas"]["ready"] == 2]

        [event, *_] = wait_for(ready_event, 30, what="a resource_status event with 2 ready replicas")
        data = event["data"]
        assert event["type"] == "cluster.resource_status" and data["cluster"] == "test"
        assert data["annotations"] == {"mae.io/record-id": "7"} and data["kind"] == "Deployment"
        assert int(data["resource_version"]) > 0 and data["uid"]
        # scaling is a change: it is reported
        out = kubectl("scale", "deployment/web", "-n", app, "--replicas=1", kubeconfig=test["kubeconfig"], timeout=30)
        assert out.returncode == 0, out.stderr
        wait_for(lambda: [e for e in (ready_event() and received) if e["data"]["namespace"] == app
                          and e["data"]["replicas"]["desired"] == 1], 30, what="scaled report")
        bound.delete()
    with ClusterRpcProxy(rpc_config(stack), timeout=15) as rpc:
        [latest] = rpc.cluster.latest_reports("test", app)
    assert latest["replicas"]["desired"] == 1 and latest["name"] == "web"
    # events are sent only on change: far fewer than the watch traffic, and monotonic
    versions = [int(e["data"]["resource_version"]) for e in received if e["data"]["namespace"] == app]
    assert versions == sorted(versions) and len(versions) == len(set(versions))


def _post_reports(stack, cluster, token, reports):
    return requests.post(f"{stack.url}/api/v1/clusters/{cluster}/reports", json={"reports": reports},
                         headers={"Authorization": f"Bearer {token}"} if token else {}, timeout=10)


def _report(namespace, name, uid, rv, ready=1):
    return {"namespace": namespace, "kind": "Deployment", "name": name, "uid": uid, "generation": 1,
            "observed_generation": 1, "resource_version": str(rv), "deleted": False, "labels": {},
            "annotations": {}, "replicas": {"desired": 1, "updated": 1, "ready": ready, "available": ready,
                                            "unavailable": 0},
            "conditions": [], "progress_deadline_seconds": 600, "pods": [], "events": [],
            "observed_at": rfc3339(utcnow())}


def test_forged_or_foreign_report_tokens_are_401(clusters, stack, admin):
    report = [_report("forged", "x", "u", 1)]
    assert _post_reports(stack, "test", None, report).status_code == 401
    assert _post_reports(stack, "test", "mae_r_" + "A" * 43, report).status_code == 401
    assert _post_reports(stack, "test", admin.token, report).status_code == 401  # a user token is not one
    prod_token = stack.report_token_path("prod").read_text().strip()
    assert _post_reports(stack, "test", prod_token, report).status_code == 401  # another cluster's
    assert _post_reports(stack, "no-such", prod_token, report).status_code == 401


def test_replayed_and_older_reports_change_nothing(clusters, stack):
    token = stack.report_token_path("test").read_text().strip()
    ns, name, uid = "replay", f"web-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    first = _post_reports(stack, "test", token, [_report(ns, name, uid, 10_000_000, ready=1)])
    assert first.status_code == 202 and first.json() == {"accepted": 1, "dropped": 0}
    again = _post_reports(stack, "test", token, [_report(ns, name, uid, 10_000_000, ready=1)])
    assert again.status_code == 202 and again.json() == {"accepted": 0, "dropped": 1}
    older = _post_reports(stack, "test", token, [_report(ns, name, uid, 9_999_999, ready=0)])
    assert older.json() == {"accepted": 0, "dropped": 1}
    with ClusterRpcProxy(rpc_config(stack), timeout=15) as rpc:
        [latest] = [r for r in rpc.cluster.latest_reports("test", ns) if r["name"] == name]
    assert latest["resource_version"] == "10000000" and latest["replicas"]["ready"] == 1
    bad = _post_reports(stack, "test", token, [{"kind": "Deployment"}])
    assert bad.status_code == 422


def test_credentials_never_reach_the_logs(clusters, stack):
    secrets = [clusters["test"]["token"], clusters["prod"]["token"]]
    secrets += [stack.report_token_path(n).read_text().strip() for n in ("test", "prod")]
    for log in stack.log_dir.glob("*.log"):
        if log.name.startswith("sandbox-"):
            continue  # the cluster's own log may name its own token
        text = log.read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, f"a credential appears in {log.name}"
