"""A team ships v1, then v2 through CI with ``auto_route``: the users behind the ingress reach v2.

Runs on sandbox clusters and on a real API server (``team`` takes ``mae``). The ingress
route names no version, so it follows the service's routed version; what its backend
reaches is read with kubectl: Ingress → Service → the pods its selector picks.
"""
import json
import uuid

from tests.e2e.test_deploy import deploy, new_app, new_version, team  # noqa: F401  (fixture)
from tests.e2e.test_shipping import succeeded
from tests.fakes.drone import FakeDrone, build_payload, send_webhook
from tests.kube import on_cluster
from tests.waiting import waiter

wait_for = waiter(timeout=60.0, interval=0.3)


def kube_json(info, app, *what):
    out = on_cluster(info, "-n", app, "get", *what, "-o", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def backend_versions(info, app, ingress):
    """Per backend of the ingress, the versions of the ready pods its Service selects."""
    found = {}
    for rule in kube_json(info, app, "ingress", ingress)["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            name = path["backend"]["service"]["name"]
            selector = kube_json(info, app, "service", name)["spec"]["selector"]
            pods = kube_json(info, app, "pods", "-l", ",".join(f"{k}={v}" for k, v in selector.items()))["items"]
            ready = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                            for c in p["status"].get("conditions") or [])]
            found[name] = sorted({p["metadata"]["labels"]["mae.io/version"] for p in ready})
    return found


def test_a_team_ships_v1_then_v2_through_ci_and_users_reach_v2(team):
    app = new_app(team, "ship")
    dev, maintainer, info = team["developer"], team["maintainer"], team["clusters"]["test"]

    # v1 by hand: deployed, routed, and an ingress that follows the routed version
    new_version(team, app, "nginx:1.0", name="v1")
    succeeded(dev, deploy(dev, app, {"env": "test"}, version="v1"))
    succeeded(dev, dev.post(f"/apps/{app}/services/web/route",
                            json={"version": "v1", "env": "test"}).json()["record_id"])
    host = f"www-{app}.example.test"
    resp = dev.post(f"/apps/{app}/ingresses", json={"name": "www", "host": host,
                                                     "routes": [{"path": "/", "service": "web"}]})
    assert resp.status_code == 201, resp.text
    resp = dev.post(f"/apps/{app}/ingresses/www/deploy", json={"env": "test"})
    assert resp.status_code == 202, resp.text
    succeeded(dev, resp.json()["record_id"])
    assert backend_versions(info, app, "www") == {"web": ["v1"]}

    # CI: a tag build becomes v2, deployed to test, then routed to once it succeeded
    secret, token = "drone-webhook-" + uuid.uuid4().hex, "drone-token-" + uuid.uuid4().hex
    with FakeDrone(token, repo=f"team/{app}") as drone:
        lonely = maintainer.put(f"/apps/{app}/services/web/ci", json={
            "provider": "drone", "server": drone.base_url, "repo": drone.repo, "token": token,
            "image": "registry.local/team/web", "webhook_secret": secret, "auto_route": True})
        assert lonely.status_code == 422 and lonely.json()["error"]["details"]["field"] == "auto_route"
        link = maintainer.put(f"/apps/{app}/services/web/ci", json={
            "provider": "drone", "server": drone.base_url, "repo": drone.repo, "token": token,
            "image": "registry.local/team/web", "webhook_secret": secret, "auto_deploy_env": "test",
            "auto_route": True})
        assert link.status_code == 200 and link.json()["auto_route"] is True, link.text
        build = drone.add_build(2, "success", "refs/tags/v2.0.0")
        resp = send_webhook(team["stack"].url + link.json()["webhook_url"], build_payload(drone.repo, build), secret)
        assert resp.status_code == 202 and resp.json()["result"] == "recorded", resp.text

    wait_for(lambda: dev.get(f"/apps/{app}/services/web").json()["routed"].get("test") == "v2-0-0",
             what="web routed to v2-0-0 on test")
    records = dev.get(f"/apps/{app}/records", params={"service": "web"}).json()["items"]
    routes = [r for r in records if r["action"] == "route" and r["version"] == "v2-0-0"]
    assert routes and routes[0]["created_by"] == "ci:drone" and routes[0]["status"] == "succeeded", records
    deployed = [r for r in records if r["action"] == "deploy" and r["version"] == "v2-0-0"]
    assert deployed[0]["status"] == "succeeded" and deployed[0]["id"] < routes[0]["id"]
    # the users behind the ingress now reach v2's pods only; v1 still runs for a switch back
    assert backend_versions(info, app, "www") == {"web": ["v2-0-0"]}
    assert kube_json(info, app, "deployment", "web-v1")["status"]["readyReplicas"] == 2
