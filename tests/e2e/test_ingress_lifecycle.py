"""An ingress's lifecycle end to end: made with a host per environment and cert-manager TLS,
read, deployed where its services run, changed, deleted from every cluster — and what a
member of another app, a developer on prod, or a host of another app can make it do.

Every test runs twice (the ``mae`` fixture): with two sandbox clusters, and with a real
API server as ``test``. What a cluster serves is checked with kubectl and the cluster's
admin kubeconfig (config/test.yaml offers the cluster issuer ``mae-test-ca``).
"""
import uuid

import pytest

from tests.kube import kubectl_json
from tests.waiting import waiter

wait_for = waiter(timeout=40.0, interval=0.2)
ISSUER = "mae-test-ca"  # config/test.yaml: CERT_MANAGER_CLUSTER_ISSUERS


@pytest.fixture(scope="module")
def team(mae):
    run = uuid.uuid4().hex[:4]
    people = {role: mae.login(f"ing-{role}-{run}") for role in ("owner", "developer", "maintainer", "viewer",
                                                                "outsider")}
    app, theirs = f"ing-{uuid.uuid4().hex[:6]}", f"ing-out-{run}"
    assert people["owner"].post("/apps", json={"name": app}).status_code == 201
    for role in ("developer", "maintainer", "viewer"):
        added = people["owner"].put(f"/apps/{app}/members/ing-{role}-{run}", json={"role": role})
        assert added.status_code == 200, added.text
    assert people["outsider"].post("/apps", json={"name": theirs}).status_code == 201
    assert people["outsider"].post(f"/apps/{theirs}/services", json={"name": "site"}).status_code == 201
    for info in mae.clusters.values():
        wait_for(lambda: kubectl_json("get", "namespace", app, kubeconfig=info["kubeconfig"], timeout=30),
                 what=f"namespace {app}")
    return {**people, "app": app, "theirs": theirs, "run": run, "clusters": mae.clusters, "admin": mae.admin}


def finished(client, record_id):
    return wait_for(lambda: (lambda r: r if r["finished_at"] else None)(client.get(f"/records/{record_id}").json()),
                    what=f"record {record_id} to finish")


def succeeded(client, answer) -> int:
    assert answer.status_code == 202, answer.text
    record = finished(client, answer.json()["record_id"])
    assert record["status"] == "succeeded", record
    return record["id"]


def ingress_on(info, app, name):
    return kubectl_json("-n", app, "get", "ingress", name, "--ignore-not-found", kubeconfig=info["kubeconfig"],
                        timeout=30)


def host(team, label):
    return f"{label}-{team['run']}.{team['app']}.example.com"


def audited(team, action, target):
    admin = team["admin"]
    return wait_for(lambda: [e for e in admin.get("/admin/audit", params={"action": action, "limit": 200})
                             .json()["items"] if e["target"] == target], what=f"audit {action} of {target}")


def test_an_ingress_from_made_to_deleted_on_every_cluster(team):
    app, dev, maintainer, viewer = team["app"], team["developer"], team["maintainer"], team["viewer"]
    assert dev.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    made = dev.post(f"/apps/{app}/services/web/versions", json={
        "name": "v1", "image": "nginx:1.25", "port": 80, "replicas": 1,
        "probes": {"readiness": {"path": "/"}, "liveness": {"path": "/", "period_seconds": 15}}})
    assert made.status_code == 201, made.text
    assert made.json()["health_path"] == "/" and made.json()["probes"]["liveness"]["period_seconds"] == 15
    succeeded(dev, dev.post(f"/apps/{app}/services/web/versions/v1/deploy", json={"env": "test"}))
    succeeded(maintainer, maintainer.post(f"/apps/{app}/services/web/versions/v1/deploy", json={"env": "prod"}))
    live = kubectl_json("-n", app, "get", "deployment", "web-v1", kubeconfig=team["clusters"]["test"]["kubeconfig"])
    container = live["spec"]["template"]["spec"]["containers"][0]
    # as the API server defaults it (the sandbox like the real one)
    assert container["livenessProbe"]["httpGet"] == {"path": "/", "port": 80, "scheme": "HTTP"}
    assert container["livenessProbe"]["periodSeconds"] == 15 and container["readinessProbe"]["periodSeconds"] == 5

    hosts = {"test": host(team, "test"), "prod": host(team, "prod")}
    created = dev.post(f"/apps/{app}/ingresses", json={
        "name": "www", "host": host(team, "www"), "hosts": hosts, "tls": {"cluster_issuer": ISSUER},
        "routes": [{"path": "/", "service": "web"}, {"path": "/v1", "service": "web", "version": "v1"}]})
    assert created.status_code == 201, created.text
    shown = viewer.get(f"/apps/{app}/ingresses/www")
    assert shown.status_code == 200, shown.text
    assert shown.json()["hosts"] == hosts and shown.json()["clusters"] == []
    assert shown.json()["tls"] == {"secret_name": "www-tls", "cluster_issuer": ISSUER}
    assert shown.json()["routes"][0]["version"] is None
    listed = viewer.get(f"/apps/{app}/ingresses")
    assert listed.status_code == 200, listed.text
    assert [(i["name"], i["hosts"]) for i in listed.json()["items"]] == [("www", hosts)]
    assert team["outsider"].get(f"/apps/{app}/ingresses").status_code == 404

    # no env named: where web runs, test and prod; prod needs a maintainer
    assert dev.post(f"/apps/{app}/ingresses/www/deploy", json={}).status_code == 403
    first = record_id = succeeded(maintainer, maintainer.post(f"/apps/{app}/ingresses/www/deploy", json={}))
    assert sorted(t["cluster"] for t in maintainer.get(f"/records/{record_id}").json()["targets"]) == \
        sorted(team["clusters"])
    for name, info in team["clusters"].items():
        live = ingress_on(info, app, "www")
        assert live is not None, name
        assert live["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == ISSUER
        assert [r["host"] for r in live["spec"]["rules"]] == [hosts[info["env"]]]
        assert live["spec"]["tls"] == [{"hosts": [hosts[info["env"]]], "secretName": "www-tls"}]
        backends = [p["backend"]["service"] for p in live["spec"]["rules"][0]["http"]["paths"]]
        assert backends == [{"name": "web", "port": {"number": 80}}, {"name": "web-v1", "port": {"number": 80}}]
    assert sorted(c["name"] for c in viewer.get(f"/apps/{app}/ingresses/www").json()["clusters"]) == \
        sorted(team["clusters"])

    # a change is stored, not deployed; the old test host stays the app's while test serves it
    moved = dev.patch(f"/apps/{app}/ingresses/www", json={"hosts": {"test": host(team, "test2"),
                                                                   "prod": hosts["prod"]},
                                                         "tls": {"secret_name": "own-tls"}})
    assert moved.status_code == 200, moved.text
    assert moved.json()["hosts"]["test"] == host(team, "test2") and moved.json()["tls"] == {"secret_name": "own-tls"}
    assert ingress_on(team["clusters"]["test"], app, "www")["spec"]["rules"][0]["host"] == hosts["test"]
    entry = audited(team, "ingress_updated", f"app:{app}/ingress:www")[0]
    assert entry["details"]["changed"] == ["hosts", "tls"] and entry["details"]["hosts_freed"] == []
    old_host = {"name": "old", "host": hosts["test"], "routes": [{"path": "/", "service": "site"}]}
    taken = team["outsider"].post(f"/apps/{team['theirs']}/ingresses", json=old_host)
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "host_taken", taken.text
    succeeded(dev, dev.post(f"/apps/{app}/ingresses/www/deploy", json={"clusters": ["test"]}))
    live = ingress_on(team["clusters"]["test"], app, "www")
    assert live["spec"]["rules"][0]["host"] == host(team, "test2")
    assert live["spec"]["tls"][0]["secretName"] == "own-tls"
    assert "cert-manager.io/cluster-issuer" not in (live["metadata"].get("annotations") or {})
    assert ingress_on(team["clusters"]["prod"], app, "www")["spec"]["tls"][0]["secretName"] == "www-tls"
    # served nowhere now: free for others
    taken = team["outsider"].post(f"/apps/{team['theirs']}/ingresses", json=old_host)
    assert taken.status_code == 201, taken.text
    # rolling back to the first deploy would serve that host again: it is another app's now
    back = maintainer.post(f"/records/{first}/rollback")
    assert back.status_code == 409 and back.json()["error"]["code"] == "host_taken", back.text
    assert ingress_on(team["clusters"]["test"], app, "www")["spec"]["rules"][0]["host"] == host(team, "test2")

    # deleting it reaches prod: a developer may not; a maintainer removes it everywhere
    refused = dev.delete(f"/apps/{app}/ingresses/www")
    assert refused.status_code == 403, refused.text
    assert viewer.get(f"/apps/{app}/ingresses/www").status_code == 200
    gone = maintainer.delete(f"/apps/{app}/ingresses/www")
    record_id = succeeded(maintainer, gone)
    record = maintainer.get(f"/records/{record_id}").json()
    assert record["action"] == "delete" and record["ingress"] == "www"
    assert sorted(t["cluster"] for t in record["targets"]) == sorted(team["clusters"])
    for name, info in team["clusters"].items():
        wait_for(lambda: ingress_on(info, app, "www") is None, what=f"the ingress gone from {name}")
    assert viewer.get(f"/apps/{app}/ingresses/www").status_code == 404
    entry = audited(team, "ingress_deleted", f"app:{app}/ingress:www")[0]
    assert entry["details"]["record_id"] == record_id
    assert sorted(entry["details"]["hosts_freed"]) == sorted([host(team, "www"), host(team, "test2"), hosts["prod"]])
    # its hosts are free for others
    freed = team["outsider"].post(f"/apps/{team['theirs']}/ingresses", json={
        "name": "new", "host": hosts["prod"], "routes": [{"path": "/", "service": "site"}]})
    assert freed.status_code == 201, freed.text


def test_what_members_of_other_apps_and_bad_changes_get(team):
    app, dev, outsider = team["app"], team["developer"], team["outsider"]
    if dev.get(f"/apps/{app}/services/api").status_code == 404:
        assert dev.post(f"/apps/{app}/services", json={"name": "api"}).status_code == 201
    theirs = host(team, "theirs")
    assert outsider.post(f"/apps/{team['theirs']}/ingresses", json={
        "name": "site", "host": theirs, "routes": [{"path": "/", "service": "site"}]}).status_code == 201
    made = dev.post(f"/apps/{app}/ingresses", json={"name": "api", "host": host(team, "api"),
                                                    "routes": [{"path": "/", "service": "api"}]})
    assert made.status_code == 201, made.text

    path = f"/apps/{app}/ingresses/api"
    for answer in (outsider.get(path), outsider.patch(path, json={"host": host(team, "x")}), outsider.delete(path),
                   outsider.post(f"{path}/deploy", json={"env": "test"})):
        assert answer.status_code == 404, answer.text
    # another app's host, in hosts or as host: 409, nothing changed
    for change in ({"hosts": {"prod": theirs}}, {"host": theirs}):
        clash = dev.patch(path, json=change)
        assert clash.status_code == 409 and clash.json()["error"]["code"] == "host_taken", clash.text
    assert dev.get(path).json()["host"] == host(team, "api") and dev.get(path).json()["hosts"] == {}
    assert dev.patch(path, json={"hosts": {"prod": "*.wild.example.com"}}).status_code == 403
    for change, field in (({"tls": {"cluster_issuer": "someone-elses"}}, "tls.cluster_issuer"),
                          ({"tls": {"issuer": ISSUER}}, "tls.issuer"),
                          ({"hosts": {"staging": host(team, "s")}}, "hosts.staging"),
                          ({"routes": [{"path": "/", "service": "nope"}]}, "routes[0]"),
                          ({"name": "renamed"}, "name")):
        bad = dev.patch(path, json=change)
        assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == field, bad.text
    assert team["viewer"].patch(path, json={"host": host(team, "v")}).status_code == 403
    assert team["viewer"].delete(path).status_code == 403

    # probes: bounds and the health_path shorthand, through the API
    base = {"name": "v1", "image": "nginx:1.25", "port": 8080}
    for probes, extra, field in (
            ({"liveness": {"path": "/", "timeout_seconds": 0}}, {}, "probes.liveness.timeout_seconds"),
            ({"readiness": {"path": "/a"}}, {"health_path": "/b"}, "health_path"),
            ({"startup": {"path": "/", "failure_threshold": 500}}, {}, "probes.startup.failure_threshold")):
        bad = dev.post(f"/apps/{app}/services/api/versions", json={**base, **extra, "probes": probes})
        assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == field, bad.text
    made = dev.post(f"/apps/{app}/services/api/versions", json={**base, "probes": {
        "readiness": {"path": "/ready", "period_seconds": 7}}})
    assert made.status_code == 201 and made.json()["health_path"] == "/ready", made.text
    moved = dev.patch(f"/apps/{app}/services/api/versions/v1", json={"health_path": "/ok"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["probes"]["readiness"] == {"path": "/ok", "period_seconds": 7, "timeout_seconds": 1,
                                                   "failure_threshold": 3, "initial_delay_seconds": 0}

    # api runs nowhere yet: a deploy must be told where; a delete has nothing to remove
    nowhere = dev.post(f"{path}/deploy", json={})
    assert nowhere.status_code == 422 and "name 'env' or 'clusters'" in nowhere.json()["error"]["message"]
    deleted = dev.delete(path)
    assert deleted.status_code == 202 and deleted.json() == {"record_id": None}, deleted.text
    assert dev.get(path).status_code == 404 and dev.delete(path).status_code == 404
