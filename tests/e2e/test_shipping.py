"""Shipping a version to users, end to end: route a service's traffic, restart, scale, retire.

Runs on sandbox clusters and on a real API server (the ``mae`` fixture, through ``team``).
What the clusters hold is checked with kubectl and the cluster's admin kubeconfig.
"""
import json

from tests.e2e.test_deploy import deploy, finished, new_app, new_version, team  # noqa: F401  (fixture)
from tests.kube import on_cluster
from tests.waiting import waiter

wait_for = waiter(timeout=40.0, interval=0.2)


def get_json(info, app, *what):
    out = on_cluster(info, "-n", app, "get", *what, "-o", "json")
    return json.loads(out.stdout) if out.returncode == 0 else None


def route(client, app, body, service="web"):
    return client.post(f"/apps/{app}/services/{service}/route", json=body)


def succeeded(client, record_id):
    record = finished(client, record_id)
    assert record["status"] == "succeeded", record
    return record


def shipped_v1_v2(team):
    """An app whose service ``web`` has v1 and v2 running on the test cluster."""
    app = new_app(team, "sh")
    dev = team["developer"]
    for name in ("v1", "v2"):
        new_version(team, app, f"nginx:1.2{name[1]}", name=name)
        succeeded(dev, deploy(dev, app, {"env": "test"}, version=name))
    return app


def routed_pods(info, app, service="web"):
    """The versions of the pods the stable Service selects (what its traffic reaches)."""
    svc = get_json(info, app, "service", service)
    selector = ",".join(f"{k}={v}" for k, v in svc["spec"]["selector"].items())
    pods = get_json(info, app, "pods", "-l", selector)["items"]
    return sorted({p["metadata"]["labels"]["mae.io/version"] for p in pods}), len(pods)


def test_routing_moves_a_services_traffic_in_one_step_and_rolls_back(team):
    app = shipped_v1_v2(team)
    dev, info = team["developer"], team["clusters"]["test"]
    assert team["viewer"].get(f"/apps/{app}/services/web").json()["routed"] == {}

    first = route(dev, app, {"version": "v1", "env": "test"})
    assert first.status_code == 202, first.text
    succeeded(dev, first.json()["record_id"])
    assert routed_pods(info, app) == (["v1"], 2)
    assert team["viewer"].get(f"/apps/{app}/services/web").json()["routed"] == {"test": "v1"}

    second = route(dev, app, {"version": "v2", "clusters": ["test"]})
    assert second.status_code == 202, second.text
    record = succeeded(dev, second.json()["record_id"])
    assert (record["action"], record["version"]) == ("route", "v2")
    assert routed_pods(info, app) == (["v2"], 2)
    # v1 keeps running beside it: switching back needs no new pods
    assert get_json(info, app, "deployment", "web-v1")["status"]["readyReplicas"] == 2
    assert dev.get(f"/apps/{app}/services/web").json()["routed"] == {"test": "v2"}
    log = dev.get(f"/records/{record['id']}/logs").json()["items"]
    assert any("route web's traffic to v2" in line["line"] for line in log), log

    # rolling back to the first route sends the traffic to v1 again
    back = dev.post(f"/records/{first.json()['record_id']}/rollback")
    assert back.status_code == 202, back.text
    succeeded(dev, back.json()["record_id"])
    assert routed_pods(info, app) == (["v1"], 2)
    assert dev.get(f"/apps/{app}/services/web").json()["routed"] == {"test": "v1"}

    # stopping the traffic removes the stable Service; the versions stay
    stop = route(dev, app, {"version": None, "env": "test"})
    assert stop.status_code == 202, stop.text
    succeeded(dev, stop.json()["record_id"])
    assert get_json(info, app, "service", "web") is None
    assert get_json(info, app, "deployment", "web-v1") is not None
    assert dev.get(f"/apps/{app}/services/web").json()["routed"] == {"test": None}


def test_traffic_goes_only_to_a_ready_version_and_a_routed_one_stays(team):
    app = shipped_v1_v2(team)
    dev, info = team["developer"], team["clusters"]["test"]
    new_version(team, app, "nginx:1.27", name="v3")
    # never deployed, and then deployed but failed
    refused = route(dev, app, {"version": "v3", "env": "test"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "version_not_ready", refused.text
    assert refused.json()["error"]["details"]["clusters"] == ["test"]
    new_version(team, app, "busybox:crash", name="bad")
    assert finished(dev, deploy(dev, app, {"env": "test"}, version="bad"), timeout=60)["status"] == "failed"
    refused = route(dev, app, {"version": "bad", "env": "test"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "version_not_ready", refused.text
    assert get_json(info, app, "service", "web") is None  # nothing was routed

    succeeded(dev, route(dev, app, {"version": "v2", "env": "test"}).json()["record_id"])
    for attempt in (lambda: dev.post(f"/apps/{app}/services/web/versions/v2/retire", json={"env": "test"}),
                    lambda: dev.delete(f"/apps/{app}/services/web/versions/v2")):
        resp = attempt()
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "version_routed", resp.text
    assert get_json(info, app, "deployment", "web-v2") is not None
    assert dev.get(f"/apps/{app}/services/web/versions/v2").status_code == 200
    assert routed_pods(info, app) == (["v2"], 2)


def test_who_may_route_restart_scale_and_retire(team):
    app = shipped_v1_v2(team)
    info = team["clusters"]["test"]
    outsider = team["login"](f"sh-outsider-{team['run']}")
    calls = {"route": ("/services/web/route", {"version": "v1", "env": "test"}),
             "restart": ("/services/web/versions/v1/restart", {"env": "test"}),
             "scale": ("/services/web/versions/v1/scale", {"replicas": 3, "env": "test"}),
             "retire": ("/services/web/versions/v1/retire", {"env": "test"})}
    for what, (path, body) in calls.items():
        resp = outsider.post(f"/apps/{app}{path}", json=body)
        assert resp.status_code == 404, (what, resp.text)          # another app's user: no such app
        resp = team["viewer"].post(f"/apps/{app}{path}", json=body)
        assert resp.status_code == 403, (what, resp.text)
        resp = team["developer"].post(f"/apps/{app}{path}", json={**body, "env": "prod"})
        assert resp.status_code == 403, (what, resp.text)          # production needs a maintainer
    assert get_json(info, app, "service", "web") is None
    deployment = get_json(info, app, "deployment", "web-v1")
    assert deployment["spec"]["replicas"] == 2
    assert "kubectl.kubernetes.io/restartedAt" not in (deployment["spec"]["template"]["metadata"]
                                                       .get("annotations") or {})
    dev = team["developer"]
    for body, field in (({"replicas": -1, "env": "test"}, "replicas"), ({"replicas": "3", "env": "test"}, "replicas"),
                        ({"replicas": 3}, "env")):
        resp = dev.post(f"/apps/{app}/services/web/versions/v1/scale", json=body)
        assert resp.status_code == 422, resp.text
    resp = route(dev, app, {"env": "test"})
    assert resp.status_code == 422 and "version" in resp.json()["error"]["message"], resp.text
    assert route(dev, app, {"version": "nope", "env": "test"}).status_code == 404
    assert dev.post(f"/apps/{app}/services/web/versions/v1/restart",
                    json={"clusters": ["prod"]}).status_code == 403
    # named clusters where the version does not run: refused with the reason
    resp = team["maintainer"].post(f"/apps/{app}/services/web/versions/v1/restart", json={"clusters": ["prod"]})
    assert resp.status_code == 409 and "not running on prod" in resp.json()["error"]["message"], resp.text


def test_restart_scale_and_retire_are_records_that_change_the_cluster(team, mae):
    app = shipped_v1_v2(team)
    dev, info = team["developer"], team["clusters"]["test"]

    resp = dev.post(f"/apps/{app}/services/web/versions/v1/restart", json={"env": "test"})
    assert resp.status_code == 202, resp.text
    record = succeeded(dev, resp.json()["record_id"])
    assert record["action"] == "restart"
    template = get_json(info, app, "deployment", "web-v1")["spec"]["template"]
    assert template["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]

    resp = dev.post(f"/apps/{app}/services/web/versions/v1/scale", json={"replicas": 3, "env": "test"})
    assert resp.status_code == 202, resp.text
    record = succeeded(dev, resp.json()["record_id"])
    assert record["targets"][0]["replicas"]["ready"] == 3
    deployment = get_json(info, app, "deployment", "web-v1")
    assert deployment["spec"]["replicas"] == 3
    # scaling kept the restart: no second rollout of the pod template
    assert deployment["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]

    resp = dev.post(f"/apps/{app}/services/web/versions/v1/retire", json={"env": "test"})
    assert resp.status_code == 202, resp.text
    retired = succeeded(dev, resp.json()["record_id"])
    assert retired["action"] == "retire"
    wait_for(lambda: get_json(info, app, "deployment", "web-v1") is None, what="web-v1 gone")
    assert get_json(info, app, "service", "web-v1") is None
    assert get_json(info, app, "deployment", "web-v2") is not None
    assert dev.get(f"/apps/{app}/services/web/versions/v1").status_code == 200  # the version stays
    resp = dev.post(f"/records/{retired['id']}/rollback")
    assert resp.status_code == 409, resp.text
    # it is not running any more: no traffic, no restart
    assert route(dev, app, {"version": "v1", "env": "test"}).json()["error"]["code"] == "version_not_ready"
    assert dev.post(f"/apps/{app}/services/web/versions/v1/restart", json={"env": "test"}).status_code == 409
    succeeded(dev, deploy(dev, app, {"env": "test"}, version="v1"))
    assert get_json(info, app, "deployment", "web-v1")["spec"]["replicas"] == 2  # the version's own count
    audit = mae.admin.get("/admin/audit", params={"actor": f"dep-developer-{team['run']}", "limit": 200})
    actions = {e["action"] for e in audit.json()["items"]}
    assert {"version_restarted", "version_scaled", "version_retired"} <= actions, actions
