"""Deploys end to end: the real stack with two clusters (test, prod) and their operators, over HTTP.

Every test runs twice (the ``mae`` fixture): with two sandbox clusters, and with a real
Kubernetes API server (kube-apiserver, controller-manager, scheduler, a hollow node) as
``test``, reached with the deployer token of k8s/operator/mke-rbac.yaml. What runs on a
cluster is checked with kubectl and the cluster's admin kubeconfig — a client that
shares nothing with MAE.
"""
import json
import random
import uuid

import pytest
import requests
from shared.timeutil import rfc3339, utcnow
from tests.kube import on_cluster
from tests.waiting import waiter

wait_for = waiter(timeout=40.0, interval=0.2)




QUOTA = """{"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "compute", "namespace": "%s"},
 "spec": {"hard": {"pods": "1"}}}"""


def deployment_on(info, app, name):
    out = on_cluster(info, "-n", app, "get", "deployment", name, "-o", "json")
    return json.loads(out.stdout) if out.returncode == 0 else None


@pytest.fixture(scope="module")
def team(mae):
    run = uuid.uuid4().hex[:4]
    owner = mae.login(f"dep-owner-{run}")
    people = {"owner": owner, "run": run, "clusters": mae.clusters, "stack": mae.stack, "login": mae.login,
              "kind": mae.kind}
    for role in ("viewer", "developer", "maintainer"):
        people[role] = mae.login(f"dep-{role}-{run}")
    return people


def new_app(team, prefix="d"):
    """An app with a member per role, whose namespace exists on both clusters."""
    app = f"{prefix}-{uuid.uuid4().hex[:6]}"
    owner = team["owner"]
    assert owner.post("/apps", json={"name": app}).status_code == 201
    for role in ("viewer", "developer", "maintainer"):
        assert owner.put(f"/apps/{app}/members/dep-{role}-{team['run']}", json={"role": role}).status_code == 200
    for info in team["clusters"].values():
        wait_for(lambda: on_cluster(info, "get", "namespace", app).returncode == 0, what=f"namespace {app}")
    return app


def new_version(team, app, image, name="v1", service="web", **config):
    dev = team["developer"]
    if dev.get(f"/apps/{app}/services/{service}").status_code == 404:
        assert dev.post(f"/apps/{app}/services", json={"name": service}).status_code == 201
    resp = dev.post(f"/apps/{app}/services/{service}/versions",
                    json={"name": name, "image": image, "port": 80, "replicas": 2, **config})
    assert resp.status_code == 201, resp.text
    return name


def deploy(client, app, body, version="v1", service="web"):
    resp = client.post(f"/apps/{app}/services/{service}/versions/{version}/deploy", json=body)
    assert resp.status_code == 202, resp.text
    return resp.json()["record_id"]


def finished(client, record_id, timeout=40.0):
    return wait_for(lambda: (lambda r: r if r["finished_at"] else None)(client.get(f"/records/{record_id}").json()),
                    timeout=timeout, what=f"record {record_id} to finish")


def test_a_good_image_on_test_succeeds_with_replica_counts_and_a_log(team):
    app = new_app(team)
    new_version(team, app, "nginx:1.25")
    record_id = deploy(team["developer"], app, {"env": "test"})
    record = finished(team["viewer"], record_id)
    assert record["status"] == "succeeded", record
    [target] = record["targets"]
    assert (target["cluster"], target["env"], target["status"]) == ("test", "test", "succeeded")
    assert target["replicas"] == {"desired": 2, "updated": 2, "ready": 2, "available": 2}
    live = deployment_on(team["clusters"]["test"], app, "web-v1")
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    assert live["metadata"]["annotations"]["mae.io/record-id"] == str(record_id)
    assert live["status"]["readyReplicas"] == 2
    assert deployment_on(team["clusters"]["prod"], app, "web-v1") is None

    def full_log():
        items = team["viewer"].get(f"/records/{record_id}/logs").json()["items"]
        return items if any(i["line"] == "record succeeded" for i in items) else None
    lines = wait_for(full_log, what="the record's log")
    texts = [(i["cluster"], i["line"]) for i in lines]
    assert ("test", "applying → applied") in texts and ("test", "progressing → succeeded") in texts
    assert any(c == "test" and "Deployment" in t and "web-v1" in t for c, t in texts)  # what the cluster said
    after = lines[1]["seq"]
    rest = team["viewer"].get(f"/records/{record_id}/logs", params={"after": after}).json()
    assert [i["seq"] for i in rest["items"]] == [i["seq"] for i in lines if i["seq"] > after]

    history = team["viewer"].get(f"/apps/{app}/records", params={"service": "web", "version": "v1"}).json()
    assert [r["id"] for r in history["items"]] == [record_id]
    service = team["viewer"].get(f"/apps/{app}/services/web").json()
    [version] = service["versions"]
    assert [(c["cluster"], c["status"]) for c in version["clusters"]] == [("test", "succeeded")]


@pytest.mark.parametrize("refuse, reason, said", [
    (["label", "--overwrite", "namespace", "{app}", "pod-security.kubernetes.io/enforce=restricted"],
     "The namespace's Pod Security level (restricted:latest) forbids these pods",
     'violates PodSecurity "restricted:latest"'),
    (["apply", "-f", "-"],
     "Quota exceeded: the namespace's resource quota does not allow these pods", "exceeded quota: compute"),
], ids=["pod-security", "quota"])
def test_pods_the_cluster_refuses_fail_the_deploy_promptly_with_its_words(team, refuse, reason, said):
    """The cluster admin set the namespace's Pod Security level or a quota; the ReplicaSet
    controller cannot create the pods. The deploy fails within seconds (DEPLOY_REFUSED_SECONDS),
    not at the 600 s progress deadline, and says why in the record and its log."""
    app = new_app(team)
    info = team["clusters"]["test"]
    done = on_cluster(info, *[a.format(app=app) for a in refuse], stdin=QUOTA % app if "apply" in refuse else None)
    assert done.returncode == 0, done.stderr
    if "apply" in refuse:
        # as a cluster admin's quota would be: already counted by the quota controller
        wait_for(lambda: on_cluster(info, "-n", app, "get", "quota", "compute", "-o",
                                 "jsonpath={.status.hard.pods}").stdout == "1", what="the quota counted")
    new_version(team, app, "nginx:1.25")
    record_id = deploy(team["developer"], app, {"env": "test"})
    record = finished(team["viewer"], record_id, timeout=30)
    assert record["status"] == "failed", record
    [target] = record["targets"]
    assert target["reason"].startswith(reason), target
    assert said in target["message"]

    def log_says_why():  # log lines travel on their own queue: they may land just after the record
        lines = [i["line"] for i in team["viewer"].get(f"/records/{record_id}/logs").json()["items"]]
        return lines if any(line.startswith("progressing → failed: " + reason) for line in lines) else None
    lines = wait_for(log_says_why, what="the failure in the record's log")
    assert any(line.startswith("the cluster refuses to create the pods: ") and said in line for line in lines)
    live = deployment_on(info, app, "web-v1")
    failure = next(c for c in live["status"]["conditions"] if c["type"] == "ReplicaFailure")
    assert failure["reason"] == "FailedCreate" and said in failure["message"]


def test_prod_is_for_maintainers(team):
    app = new_app(team)
    new_version(team, app, "nginx:1.25")
    refused = team["developer"].post(f"/apps/{app}/services/web/versions/v1/deploy", json={"env": "prod"})
    assert refused.status_code == 403, refused.text
    refused = team["developer"].post(f"/apps/{app}/services/web/versions/v1/deploy",
                                     json={"clusters": ["test", "prod"]})
    assert refused.status_code == 403
    assert team["viewer"].post(f"/apps/{app}/services/web/versions/v1/deploy", json={"env": "test"}).status_code == 403
    record = finished(team["maintainer"], deploy(team["maintainer"], app, {"clusters": ["prod"]}))
    assert record["status"] == "succeeded" and record["targets"][0]["env"] == "prod"
    assert deployment_on(team["clusters"]["prod"], app, "web-v1")["status"]["readyReplicas"] == 2
    bad = team["maintainer"].post(f"/apps/{app}/services/web/versions/v1/deploy", json={"clusters": ["nowhere"]})
    assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "clusters"


@pytest.mark.parametrize("image,config,words", [
    ("nginx:missing", {}, "The image nginx:missing cannot be pulled"),
    ("busybox:crash", {}, "The container keeps crashing"),
    ("nginx:slow", {"values": {"progress_deadline_seconds": 2}}, "Not ready before the progress deadline (2 s)"),
])
def test_failures_say_why_in_plain_words(team, image, config, words):
    app = new_app(team, "f")
    new_version(team, app, image, **config)
    record = finished(team["viewer"], deploy(team["developer"], app, {"env": "test"}))
    assert record["status"] == "failed", record
    assert record["targets"][0]["reason"].startswith(words), record["targets"][0]
    assert record["reason"].startswith("test: " + words)


def test_rollback_runs_the_old_image_again(team):
    app = new_app(team)
    dev = team["developer"]
    new_version(team, app, "nginx:1.0")
    first = deploy(dev, app, {"env": "test"})
    assert finished(dev, first)["status"] == "succeeded"
    assert dev.patch(f"/apps/{app}/services/web/versions/v1", json={"image": "nginx:2.0"}).status_code == 200
    preview = dev.post(f"/apps/{app}/services/web/versions/v1/preview", json={"clusters": ["test"]})
    assert preview.status_code == 200, preview.text
    [on_test] = preview.json()["diff"]
    changed = {c["path"]: (c["before"], c["after"]) for d in on_test["diff"] for c in d["changes"]}
    assert changed["spec.template.spec.containers[0].image"] == ("nginx:1.0", "nginx:2.0")
    unified = "".join(d["unified"] for d in on_test["diff"])
    assert "-      - image: nginx:1.0\n" in unified and "+      - image: nginx:2.0\n" in unified
    second = deploy(dev, app, {"env": "test"})
    assert finished(dev, second)["status"] == "succeeded"
    test = team["clusters"]["test"]
    assert deployment_on(test, app, "web-v1")["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2.0"
    assert dev.post(f"/records/{second + 10**6}/rollback").status_code == 404
    back = dev.post(f"/records/{first}/rollback")
    assert back.status_code == 202, back.text
    record = finished(dev, back.json()["record_id"])
    assert (record["status"], record["action"], record["rollback_of"]) == ("succeeded", "rollback", first)
    live = deployment_on(test, app, "web-v1")
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.0"
    assert live["status"]["updatedReplicas"] == 2 and live["status"]["readyReplicas"] == 2


def test_a_failed_record_cannot_be_rolled_back_to(team):
    app = new_app(team, "f")
    new_version(team, app, "nginx:missing")
    record_id = deploy(team["developer"], app, {"env": "test"})
    assert finished(team["developer"], record_id)["status"] == "failed"
    resp = team["developer"].post(f"/records/{record_id}/rollback")
    assert resp.status_code == 409 and "succeeded" in resp.json()["error"]["message"]


def test_two_deploys_in_quick_succession_supersede_the_first(team):
    app = new_app(team)
    new_version(team, app, "nginx:1.25")
    first = deploy(team["developer"], app, {"env": "test"})
    second = deploy(team["developer"], app, {"env": "test"})
    assert finished(team["viewer"], second)["status"] == "succeeded"
    older = finished(team["viewer"], first)
    assert older["status"] == "superseded" and older["targets"][0]["status"] == "superseded"
    assert f"record {second}" in older["targets"][0]["reason"]


def post_reports(stack, cluster, reports):
    token = stack.report_token_path(cluster).read_text().strip()
    resp = requests.post(f"{stack.url}/api/v1/clusters/{cluster}/reports", json={"reports": reports},
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert resp.status_code == 202, resp.text


def test_duplicated_and_shuffled_status_reports_reach_the_same_final_state(team):
    """Two slow rollouts (the cluster alone would never finish them); each is then told the
    same story by reports newer than the operator's — one in order, one duplicated and shuffled
    with a stale crash report mixed in. Both end the same."""
    app, stack = new_app(team), team["stack"]
    test = team["clusters"]["test"]
    records = {}
    for name in ("inorder", "shuffled"):
        new_version(team, app, "nginx:slow", name=name)
        records[name] = deploy(team["developer"], app, {"env": "test"}, version=name)
    ends = {}
    for name, record_id in records.items():
        live = wait_for(lambda: deployment_on(test, app, f"web-{name}"), what="the deployment")
        uid, generation = live["metadata"]["uid"], live["metadata"]["generation"]
        base = 10**12 + (0 if name == "inorder" else 10**6)

        def report(i, ready, pods=()):
            return {"namespace": app, "kind": "Deployment", "name": f"web-{name}", "uid": uid,
                    "generation": generation, "observed_generation": generation,
                    "resource_version": str(base + i), "deleted": False, "labels": {},
                    "annotations": {"mae.io/record-id": str(record_id)},
                    "replicas": {"desired": 2, "updated": 2, "ready": ready, "available": ready,
                                 "unavailable": 2 - ready},
                    "conditions": [], "progress_deadline_seconds": 600, "pods": list(pods), "events": [],
                    "observed_at": rfc3339(utcnow())}
        story = [report(1, 0), report(2, 1), report(3, 2)]
        if name == "inorder":
            for r in story:
                post_reports(stack, "test", [r])
        else:
            stale = report(0, 0, pods=[{"name": "p", "phase": "Running", "ready": False, "restart_count": 3,
                                        "waiting_reason": "CrashLoopBackOff", "message": "old"}])
            burst = story * 3
            random.Random(3).shuffle(burst)
            # The stale report lands anywhere after the first (newer) one: stale when it arrives.
            rng = random.Random(4)
            for _ in range(2):
                burst.insert(rng.randint(1, len(burst)), stale)
            post_reports(stack, "test", burst[:1])
            for i in range(1, len(burst), 3):
                post_reports(stack, "test", burst[i:i + 3])
        ends[name] = finished(team["viewer"], record_id)
    strip = lambda r: [(t["status"], t["reason"], t["replicas"]) for t in r["targets"]]  # noqa: E731
    assert strip(ends["inorder"]) == strip(ends["shuffled"]) == \
        [("succeeded", None, {"desired": 2, "updated": 2, "ready": 2, "available": 2})]


FORBIDDEN = {
    "class escape": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "globals escape": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "template context": "{{ self._TemplateReference__context }}",
    "another namespace": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: kube-system}\n",
    "a ClusterRole": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: x}\n",
}


def test_templates_that_escape_or_reach_beyond_the_app_are_refused(team):
    app = new_app(team, "t")
    maintainer = team["maintainer"]
    for case, body in FORBIDDEN.items():
        resp = maintainer.post(f"/apps/{app}/templates", json={"name": "bad", "kind": "ingress", "body": body})
        assert resp.status_code == 422, (case, resp.text)
        assert resp.json()["error"]["details"]["field"] == "body", case
        assert resp.json()["error"]["details"]["reason"], case
    good = ("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: '{{ name }}'}\n"
            "spec: {rules: [{host: '{{ host }}'}]}\n")
    assert team["developer"].post(f"/apps/{app}/templates", json={"name": "mine", "kind": "ingress",
                                                                  "body": good}).status_code == 403
    resp = maintainer.post(f"/apps/{app}/templates", json={"name": "mine", "kind": "ingress", "body": good})
    assert resp.status_code == 201, resp.text
    names = {t["name"] for t in team["viewer"].get("/templates").json()["items"]}
    assert {"default-version", "default-ingress", "mine"} <= names


def test_version_config_is_validated_naming_the_field(team):
    app = new_app(team, "v")
    dev = team["developer"]
    assert dev.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    for body, field in [({"port": 0}, "port"), ({"replicas": 99}, "replicas"), ({"env": {"1X": "y"}}, "env.1X"),
                        ({"resources": {"cpu": "lots"}}, "resources.requests.cpu"), ({"image": ""}, "image"),
                        ({"command": "sh -c x"}, "command"), ({"health_path": "x"}, "health_path")]:
        resp = dev.post(f"/apps/{app}/services/web/versions", json={"name": "v1", "image": "nginx:1", "port": 80,
                                                                    **body})
        assert resp.status_code == 422 and resp.json()["error"]["details"]["field"] == field, (body, resp.text)
    assert team["viewer"].post(f"/apps/{app}/services", json={"name": "x"}).status_code == 403


def test_deleting_a_version_removes_it_from_its_clusters(team):
    app = new_app(team)
    new_version(team, app, "nginx:1.25")
    assert finished(team["maintainer"], deploy(team["maintainer"], app, {"clusters": ["test", "prod"]}))["status"] \
        == "succeeded"
    # it runs on prod too, so a developer may not delete it
    assert team["developer"].delete(f"/apps/{app}/services/web/versions/v1").status_code == 403
    resp = team["maintainer"].delete(f"/apps/{app}/services/web/versions/v1")
    assert resp.status_code == 202, resp.text
    record = finished(team["viewer"], resp.json()["record_id"])
    assert (record["action"], record["status"]) == ("delete", "succeeded")
    for info in team["clusters"].values():
        wait_for(lambda: deployment_on(info, app, "web-v1") is None, what="the deployment to go")
        assert on_cluster(info, "-n", app, "get", "service", "web-v1").returncode != 0
    assert team["viewer"].get(f"/apps/{app}/services/web/versions/v1").status_code == 404


def test_records_of_other_apps_do_not_exist_for_outsiders(team):
    login = team["login"]
    app = new_app(team)
    new_version(team, app, "nginx:1.25")
    record_id = deploy(team["developer"], app, {"env": "test"})
    stranger = login(f"dep-stranger-{team['run']}")
    for path in (f"/records/{record_id}", f"/records/{record_id}/logs"):
        resp = stranger.get(path)
        assert resp.status_code == 404 and resp.json()["error"]["message"] == f"Deploy record {record_id} was not found."
    assert stranger.post(f"/records/{record_id}/rollback").status_code == 404
    assert stranger.get(f"/apps/{app}/records").status_code == 404
    assert "mine" not in {t["name"] for t in stranger.get("/templates").json()["items"]}
