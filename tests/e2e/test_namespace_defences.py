"""Defence in depth on the clusters (SECURITY.md): every namespace MAE creates carries, besides
its mark and Pod Security labels, a ResourceQuota ``mae-quota`` and a LimitRange
``mae-limits`` (NAMESPACE_QUOTA / NAMESPACE_LIMITS, or the app's own policy set by an admin),
and the cluster service's tend puts back what someone changed by hand — but never touches a
namespace that carries neither MAE's labels nor the app's id. Checked with kubectl, a client
that shares nothing with MAE; each test runs against the sandboxes and a real API server."""
import json
import uuid

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from services.cluster.domain import defences
from shared.config import ROOT, load_config
from tests.e2e.cluster_objects import get, replace_namespace_with_theirs
from tests.e2e.test_clusters import rpc_config
from tests.kube import on_cluster
from tests.waiting import waiter

wait_for = waiter(timeout=60.0, interval=0.3)
MANAGED = "app.kubernetes.io/managed-by"
ENFORCE = "pod-security.kubernetes.io/enforce"
DEFAULTS = defences.for_app(defences.Settings.from_config(load_config(ROOT / "config" / "test.yaml")))


def run(info, *args, stdin=None):
    out = on_cluster(info, *args, stdin=stdin)
    assert out.returncode == 0, out.stderr
    return out


def tend(mae, cluster="test"):
    """One tend of the cluster now, healing included (what the timer does by itself)."""
    with ClusterRpcProxy(rpc_config(mae.stack), timeout=30) as rpc:
        return rpc.cluster.reconcile(cluster)


def defended(info, app, want=DEFAULTS):
    """The app's namespace, quota and limit range if all are there as ``want`` says, else None."""
    ns = get(info, "namespace", app)
    if not ns or ns["metadata"].get("deletionTimestamp"):
        return None
    labels = ns["metadata"].get("labels") or {}
    if labels.get(MANAGED) != "mae" or labels.get("mae.io/app") != app or \
            labels.get(ENFORCE) != want.pod_security["enforce"]:
        return None
    quota, limits = get(info, "resourcequota", "mae-quota", "-n", app), get(info, "limitrange", "mae-limits", "-n", app)
    if not defences.quota_matches(quota, app, want.quota) or not defences.limits_match(limits, app, want.limits):
        return None
    return ns, quota, limits


def ready_to_deploy(info, app):
    """Defended, and the quota counted by the quota controller (a real API server refuses pods
    with "status unknown for quota" until it is)."""
    found = defended(info, app)
    return found if found and (found[1].get("status") or {}).get("hard") else None


def new_app(api, prefix):
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    resp = api.post("/apps", json={"name": name})
    assert resp.status_code == 201, resp.text
    return name


def failed_row(mae, app, cluster="test"):
    detail = mae.admin.get(f"/clusters/{cluster}").json()["namespaces"]
    return next((f for f in detail["failed"] if f["namespace"] == app), None)


@pytest.fixture(scope="module")
def owner(mae):
    return mae.login(f"def-owner-{uuid.uuid4().hex[:4]}")


def test_a_new_apps_namespace_has_maes_quota_and_limit_range(mae, owner):
    app = new_app(owner, "q")
    for info in mae.clusters.values():
        ns, quota, limits = wait_for(lambda: defended(info, app), what=f"{app} with its quota and limits")
        assert ns["metadata"]["annotations"]["mae.io/app-id"].isdigit()
        for obj in (quota, limits):
            assert obj["metadata"]["labels"][MANAGED] == "mae" and obj["metadata"]["labels"]["mae.io/app"] == app
        assert quota["spec"]["hard"]["pods"] == "50" and quota["spec"]["hard"]["requests.cpu"] == "4"
        [item] = limits["spec"]["limits"]
        assert item["type"] == "Container" and item["max"] == {"cpu": "2", "memory": "4Gi"}
        assert item["default"] == {"cpu": "500m", "memory": "512Mi"}


def test_a_version_without_resources_gets_the_defaults_and_runs(mae, owner):
    app = new_app(owner, "fit")
    test = mae.clusters["test"]
    wait_for(lambda: ready_to_deploy(test, app), what="the namespace's defences, counted")
    assert owner.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    assert owner.post(f"/apps/{app}/services/web/versions",
                      json={"name": "v1", "image": "nginx:1.25", "port": 80, "replicas": 2}).status_code == 201
    record_id = owner.post(f"/apps/{app}/services/web/versions/v1/deploy", json={"env": "test"}).json()["record_id"]
    record = wait_for(lambda: (lambda r: r if r["finished_at"] else None)(owner.get(f"/records/{record_id}").json()),
                      what="the deploy")
    assert record["status"] == "succeeded", record
    [pod, *_] = get(test, "pods", "-n", app)["items"]
    resources = pod["spec"]["containers"][0]["resources"]   # filled in by the LimitRange
    assert defences.same_quantities(resources["limits"], {"cpu": "500m", "memory": "512Mi"})
    assert defences.same_quantities(resources["requests"], {"cpu": "100m", "memory": "128Mi"})


def test_a_pod_over_the_limit_range_is_refused_by_the_cluster_and_the_deploy_says_why(mae, owner):
    app = new_app(owner, "big")
    test = mae.clusters["test"]
    wait_for(lambda: ready_to_deploy(test, app), what="the namespace's defences, counted")
    assert owner.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    made = owner.post(f"/apps/{app}/services/web/versions", json={
        "name": "v1", "image": "nginx:1.25", "port": 80, "replicas": 1,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "4", "memory": "256Mi"}}})
    assert made.status_code == 201, made.text
    record_id = owner.post(f"/apps/{app}/services/web/versions/v1/deploy", json={"env": "test"}).json()["record_id"]
    record = wait_for(lambda: (lambda r: r if r["finished_at"] else None)(owner.get(f"/records/{record_id}").json()),
                      what="the deploy")
    assert record["status"] == "failed", record
    [target] = record["targets"]
    assert target["reason"].startswith("The namespace's LimitRange does not allow these pods' CPU or memory"), target
    assert "maximum cpu usage per Container is 2, but limit is 4" in target["message"]
    assert get(test, "pods", "-n", app)["items"] == []


def test_a_namespace_deleted_by_hand_comes_back_with_its_mark_quota_and_limits(mae, owner):
    app = new_app(owner, "gone")
    test = mae.clusters["test"]
    ns, _, _ = wait_for(lambda: defended(test, app), what="the namespace's defences")
    run(test, "delete", "namespace", app, "--wait=true", "--timeout=90s")

    def back():
        tend(mae)
        found = defended(test, app)
        return found if found and found[0]["metadata"]["uid"] != ns["metadata"]["uid"] else None
    again, _, _ = wait_for(back, what="the namespace made again")
    assert again["metadata"]["annotations"]["mae.io/app-id"] == ns["metadata"]["annotations"]["mae.io/app-id"]
    assert failed_row(mae, app) is None


def test_labels_quota_and_limits_changed_by_hand_are_put_back_in_place(mae, owner):
    app = new_app(owner, "drift")
    test = mae.clusters["test"]
    ns, _, _ = wait_for(lambda: defended(test, app), what="the namespace's defences")
    run(test, "label", "namespace", app, f"{MANAGED}-", "mae.io/app-", f"{ENFORCE}=privileged", "--overwrite")
    run(test, "patch", "resourcequota", "mae-quota", "-n", app, "--type=merge",
        "-p", json.dumps({"spec": {"hard": {"pods": "1000", "limits.cpu": "512"}}}))
    run(test, "delete", "limitrange", "mae-limits", "-n", app)
    stripped = get(test, "namespace", app)
    assert MANAGED not in stripped["metadata"]["labels"] and stripped["metadata"]["labels"][ENFORCE] == "privileged"

    def healed():
        tend(mae)
        return defended(test, app)
    again, _, _ = wait_for(healed, what="the namespace healed")
    assert again["metadata"]["uid"] == ns["metadata"]["uid"]   # the same namespace, marked again
    assert again["metadata"]["labels"][ENFORCE] == "baseline"
    assert failed_row(mae, app) is None


def test_a_namespace_without_maes_labels_or_the_apps_id_is_never_touched(mae, owner):
    """Someone strips MAE's mark (labels and id, in one write) from an app's namespace on test,
    and replaces the app's namespace on prod with one of their own: neither is MAE's any more."""
    app = new_app(owner, "theirs")
    test, prod = mae.clusters["test"], mae.clusters["prod"]
    for info in (test, prod):
        wait_for(lambda: defended(info, app), what="the namespace's defences")
    run(test, "patch", "namespace", app, "--type=merge", "-p", json.dumps(
        {"metadata": {"labels": {MANAGED: None, "mae.io/app": None, ENFORCE: "privileged"},
                      "annotations": {"mae.io/app-id": None}}}))
    run(test, "patch", "resourcequota", "mae-quota", "-n", app, "--type=merge",
        "-p", json.dumps({"spec": {"hard": {"pods": "1000"}}}))
    replace_namespace_with_theirs(prod, app, timeout="90s")
    before = {name: get(info, "namespace", app) for name, info in (("test", test), ("prod", prod))}

    def refused(cluster):
        tend(mae, cluster)
        row = failed_row(mae, app, cluster)
        return row if row and row["last_error"].startswith("NotManaged") else None
    for cluster, info in (("test", test), ("prod", prod)):
        wait_for(lambda: refused(cluster), what=f"the row on {cluster} failed as NotManaged")
        tend(mae, cluster)
        after = get(info, "namespace", app)
        assert after["metadata"]["uid"] == before[cluster]["metadata"]["uid"]
        assert after["metadata"].get("labels") == before[cluster]["metadata"].get("labels")
        assert after["metadata"].get("annotations") == before[cluster]["metadata"].get("annotations")
        assert MANAGED not in after["metadata"]["labels"]
    assert get(test, "resourcequota", "mae-quota", "-n", app)["spec"]["hard"]["pods"] in ("1000", "1k")  # left as is (a real API server says 1k)
    assert get(prod, "resourcequota", "mae-quota", "-n", app) is None                          # none made
    assert get(prod, "limitrange", "mae-limits", "-n", app) is None


def test_an_admins_quota_and_limits_for_one_app_reach_its_namespaces_and_the_defaults_come_back(mae, owner):
    app = new_app(owner, "own")
    for info in mae.clusters.values():
        wait_for(lambda: defended(info, app), what="the namespace's defences")
    own = {"quota": {"pods": "3", "limits.cpu": "2"}, "limits": {"max": {"cpu": "1", "memory": "1Gi"}}}
    resp = mae.admin.put(f"/apps/{app}/policy", json=own)
    assert resp.status_code == 200, resp.text
    want = defences.for_app(defences.Settings.from_config(load_config(ROOT / "config" / "test.yaml")), own)
    assert want.limits["default"] == {"cpu": "1", "memory": "1Gi"}   # the API server's own defaulting
    for info in mae.clusters.values():
        _, quota, limits = wait_for(lambda: defended(info, app, want), what="the app's own quota and limits")
        assert quota["spec"]["hard"] == {"pods": "3", "limits.cpu": "2"}
    # a tend heals towards the app's own values, not the defaults
    test = mae.clusters["test"]
    run(test, "patch", "resourcequota", "mae-quota", "-n", app, "--type=merge",
        "-p", json.dumps({"spec": {"hard": {"pods": "300"}}}))
    wait_for(lambda: tend(mae) and defended(test, app, want), what="the app's own quota healed")
    back = mae.admin.put(f"/apps/{app}/policy", json={"quota": None, "limits": None})
    assert back.status_code == 200, back.text
    for info in mae.clusters.values():
        wait_for(lambda: defended(info, app), what="the defaults again")


def test_an_admin_may_lift_an_apps_pod_security_to_privileged_and_back(mae, owner):
    app = new_app(owner, "priv")
    for info in mae.clusters.values():
        wait_for(lambda: defended(info, app), what="the namespace's defences")
    assert mae.admin.put(f"/apps/{app}/policy", json={"pod_security": "privileged"}).status_code == 200
    privileged = defences.for_app(defences.Settings.from_config(load_config(ROOT / "config" / "test.yaml")),
                                  {"pod_security": "privileged"})
    for info in mae.clusters.values():
        ns, _, _ = wait_for(lambda: defended(info, app, privileged), what="enforce: privileged")
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/warn"] == "restricted"
    tend(mae)   # an admin's privileged is what MAE wants: not drift
    assert defended(mae.clusters["test"], app, privileged)
    assert mae.admin.put(f"/apps/{app}/policy", json={"pod_security": "baseline"}).status_code == 200
    for info in mae.clusters.values():
        wait_for(lambda: defended(info, app), what="enforce: baseline again")
