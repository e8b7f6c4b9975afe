"""The tenant boundary on the clusters, attacked by a plain user through the API
(SECURITY.md): system and MAE namespaces are never apps, MAE never adopts, replaces or
deletes what it did not create for that app. Each test runs against the sandboxes and
against a real API server as ``test`` (the ``mae`` fixture), and checks the clusters with
kubectl afterwards — a client that shares nothing with MAE."""
import json
import uuid

import pytest

from tests.e2e.cluster_objects import get, replace_namespace_with_theirs
from tests.kube import on_cluster
from tests.waiting import waiter

wait_for = waiter(timeout=40.0, interval=0.2)


def apply(info, manifest):
    out = on_cluster(info, "apply", "-f", "-", stdin=json.dumps(manifest))
    assert out.returncode == 0, out.stderr


@pytest.fixture(scope="module")
def attacker(mae):
    return mae.login(f"tenant-{uuid.uuid4().hex[:4]}")


@pytest.mark.parametrize("name", ["kube-system", "default", "kube-public", "kube-node-lease", "mae-system",
                                  "mae", "kube-anything"])
def test_system_and_mae_namespaces_are_never_apps(mae, attacker, name):
    before = {c: get(info, "namespace", name) for c, info in mae.clusters.items()}
    resp = attacker.post("/apps", json={"name": name})
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "reserved_name" and "reserved" in resp.json()["error"]["message"]
    assert attacker.get(f"/apps/{name}").status_code == 404
    for cluster, info in mae.clusters.items():  # nothing on the clusters changed
        after = get(info, "namespace", name)
        labels = lambda ns: (ns or {}).get("metadata", {}).get("labels")  # noqa: E731
        assert labels(after) == labels(before[cluster])


def test_an_app_named_after_a_namespace_mae_did_not_create_is_refused(mae, attacker):
    name = f"theirs-{uuid.uuid4().hex[:6]}"
    prod = mae.clusters["prod"]
    apply(prod, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"team": "other"}}})
    apply(prod, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "precious", "namespace": name},
                 "data": {"k": "v"}})
    resp = attacker.post("/apps", json={"name": name})
    assert resp.status_code == 409, resp.text
    error = resp.json()["error"]
    assert error["code"] == "namespace_exists" and error["details"]["clusters"] == ["prod"]
    assert attacker.get(f"/apps/{name}").status_code == 404
    ns = get(prod, "namespace", name)
    assert ns["metadata"]["labels"].get("app.kubernetes.io/managed-by") is None  # not adopted
    assert get(prod, "configmap", "precious", "-n", name) is not None
    assert get(mae.clusters["test"], "namespace", name) is None  # and not created elsewhere either


def test_mae_marks_its_namespaces_with_the_apps_identity(mae, attacker):
    name = f"mine-{uuid.uuid4().hex[:6]}"
    assert attacker.post("/apps", json={"name": name}).status_code == 201
    for info in mae.clusters.values():
        ns = wait_for(lambda: get(info, "namespace", name), what=f"namespace {name}")
        assert ns["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "mae"
        assert ns["metadata"]["labels"]["mae.io/app"] == name
        assert ns["metadata"]["annotations"]["mae.io/app-id"].isdigit()
        labels = ns["metadata"]["labels"]  # the cluster itself holds the app to Pod Security baseline
        assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
        assert labels["pod-security.kubernetes.io/warn"] == labels["pod-security.kubernetes.io/audit"] == "restricted"
        assert labels["pod-security.kubernetes.io/enforce-version"] == "latest"


def test_a_privileged_pod_is_refused_by_mae_and_by_the_cluster_itself(mae):
    """Two layers: MAE's policy refuses the template (422 policy_violation); and where MAE's
    checks are not in the way (the same Deployment applied with kubectl into the app's
    namespace), the namespace's Pod Security label makes the API server refuse its pods."""
    from services.deploy.domain import templates

    owner = mae.login(f"psa-owner-{uuid.uuid4().hex[:4]}")
    app = f"psa-{uuid.uuid4().hex[:6]}"
    assert owner.post("/apps", json={"name": app}).status_code == 201
    body = templates.BUILTINS["default-version"]["body"].replace(
        "          image: {{ image | tojson }}\n",
        "          image: {{ image | tojson }}\n          securityContext: {privileged: true}\n", 1)
    assert "privileged" in body
    made = owner.post(f"/apps/{app}/templates", json={"name": "root", "kind": "version", "body": body,
                                                      "fields": templates.BUILTINS["default-version"]["fields"]})
    assert made.status_code == 422, made.text
    assert made.json()["error"]["code"] == "policy_violation"
    assert made.json()["error"]["details"]["rule"] == "privileged"
    test = mae.clusters["test"]
    wait_for(lambda: get(test, "namespace", app), what="namespace")
    apply(test, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "root", "namespace": app},
                 "spec": {"replicas": 1, "selector": {"matchLabels": {"run": "root"}},
                          "template": {"metadata": {"labels": {"run": "root"}},
                                       "spec": {"containers": [{"name": "c", "image": "nginx:1.25",
                                                                "securityContext": {"privileged": True}}]}}}})

    def refused():
        deployment = get(test, "deployment", "root", "-n", app) or {}
        return next((c for c in deployment.get("status", {}).get("conditions") or []
                     if c["type"] == "ReplicaFailure" and c["status"] == "True"), None)
    condition = wait_for(refused, what="the ReplicaFailure condition")
    assert 'violates PodSecurity "baseline:latest"' in condition["message"] and "privileged" in condition["message"]
    assert get(test, "pods", "-n", app)["items"] == []


def test_deleting_an_app_deletes_only_the_namespaces_mae_made_for_it(mae, attacker):
    name = f"gone-{uuid.uuid4().hex[:6]}"
    assert attacker.post("/apps", json={"name": name}).status_code == 201
    test, prod = mae.clusters["test"], mae.clusters["prod"]
    for info in (test, prod):
        wait_for(lambda: get(info, "namespace", name), what="the app's namespaces")
    # on prod someone replaces MAE's namespace with one of their own, same name, no mark
    replace_namespace_with_theirs(prod, name)
    assert attacker.delete(f"/apps/{name}").status_code in (200, 204)
    wait_for(lambda: get(test, "namespace", name) is None, what="MAE's namespace deleted on test")
    survivor = get(prod, "namespace", name)  # the other one is left alone
    assert survivor is not None and not survivor["metadata"].get("deletionTimestamp")


def test_a_deploy_never_replaces_an_object_mae_did_not_create(mae, attacker):
    app = f"clash-{uuid.uuid4().hex[:6]}"
    assert attacker.post("/apps", json={"name": app}).status_code == 201
    test = mae.clusters["test"]
    wait_for(lambda: get(test, "namespace", app), what="namespace")
    foreign = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-v1", "namespace": app},
               "spec": {"selector": {"run": "theirs"}, "ports": [{"port": 81}]}}
    apply(test, foreign)
    assert attacker.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    assert attacker.post(f"/apps/{app}/services/web/versions",
                         json={"name": "v1", "image": "nginx:1.25", "port": 80}).status_code == 201
    resp = attacker.post(f"/apps/{app}/services/web/versions/v1/deploy", json={"env": "test"})
    assert resp.status_code == 202, resp.text
    record_id = resp.json()["record_id"]
    record = wait_for(lambda: (lambda r: r if r["finished_at"] else None)(
        attacker.get(f"/records/{record_id}").json()), what="the record to finish")
    assert record["status"] == "failed"
    assert record["targets"][0]["reason"].startswith("An object of the same name exists on the cluster and is not MAE's")
    live = get(test, "service", "web-v1", "-n", app)
    assert live["spec"]["selector"] == {"run": "theirs"} and live["spec"]["ports"][0]["port"] == 81
    assert get(test, "deployment", "web-v1", "-n", app) is None  # stopped before the Deployment


def test_a_preview_never_shows_a_secrets_value_and_prod_needs_the_prod_role(mae):
    import base64

    from services.deploy.domain import templates

    owner = mae.login(f"sec-owner-{uuid.uuid4().hex[:4]}")
    dev = mae.login(f"sec-dev-{uuid.uuid4().hex[:4]}")
    app = f"sec-{uuid.uuid4().hex[:6]}"
    assert owner.post("/apps", json={"name": app}).status_code == 201
    assert owner.put(f"/apps/{app}/members/{dev_name(dev)}", json={"role": "developer"}).status_code == 200
    body = templates.BUILTINS["default-version"]["body"] + (
        "\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ name | tojson }}\n"
        "  namespace: {{ namespace | tojson }}\nstringData:\n  password: {{ values.password | tojson }}\n"
        "  user: \"app\"\n")
    fields = templates.BUILTINS["default-version"]["fields"] + [
        {"name": "password", "type": "string", "default": "sample"}]
    made = owner.post(f"/apps/{app}/templates", json={"name": "with-secret", "kind": "version", "body": body,
                                                      "fields": fields})
    assert made.status_code == 201, made.text
    old, new = f"old-{uuid.uuid4().hex}", f"new-{uuid.uuid4().hex}"
    assert owner.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    created = owner.post(f"/apps/{app}/services/web/versions", json={
        "name": "v1", "image": "nginx:1.25", "port": 80, "template": "with-secret", "values": {"password": old}})
    assert created.status_code == 201, created.text
    wait_for(lambda: get(mae.clusters["test"], "namespace", app), what="namespace")
    record_id = owner.post(f"/apps/{app}/services/web/versions/v1/deploy", json={"env": "test"}).json()["record_id"]
    done = wait_for(lambda: (lambda r: r if r["finished_at"] else None)(owner.get(f"/records/{record_id}").json()),
                    what="the deploy")
    assert done["status"] == "succeeded", done
    assert owner.patch(f"/apps/{app}/services/web/versions/v1",
                       json={"values": {"password": new}}).status_code == 200

    preview = dev.post(f"/apps/{app}/services/web/versions/v1/preview", json={"clusters": ["test"]})
    assert preview.status_code == 200, preview.text
    for value in (old, new):
        for form in (value, base64.b64encode(value.encode()).decode()):
            assert form not in preview.text
    secret = next(m for m in preview.json()["manifests"] if m["kind"] == "Secret")
    assert secret["data"] == {"password": "<redacted>", "user": "<redacted>"} and "stringData" not in secret
    [on_test] = preview.json()["diff"]
    diff = next(d for d in on_test["diff"] if d["kind"] == "Secret")
    assert diff["change"] == "update"
    assert [(c["path"], c["before"], c["after"]) for c in diff["changes"]] == [
        ("data.password", "<redacted: differs from the new value>", "<redacted>")]  # user: unchanged

    # production is for those who may deploy there
    refused = dev.post(f"/apps/{app}/services/web/versions/v1/preview", json={"clusters": ["prod"]})
    assert refused.status_code == 403
    everywhere = dev.post(f"/apps/{app}/services/web/versions/v1/preview", json={})
    assert {d["env"] for d in everywhere.json()["diff"]} == {"test"}
    assert {d["env"] for d in owner.post(f"/apps/{app}/services/web/versions/v1/preview",
                                         json={}).json()["diff"]} == {"test", "prod"}


def dev_name(api) -> str:
    return api.get("/me").json()["username"]
