"""A version's secret_env end to end: names in answers, values only in the Secret on the
cluster (checked with kubectl and the cluster's admin kubeconfig), never in a preview,
a record, its log, the audit log, a log file of the stack, nor in clear in MariaDB; a
change rolls the pods, a rollback takes today's values, a delete takes the Secret away;
viewers see env names without values; outsiders see nothing.

Sandbox clusters only: the real-cluster tier is tests/realkube's."""
import base64
import json
import uuid

import pytest
from sqlalchemy import create_engine, text

from tests.kube import kubectl, kubectl_json
from tests.waiting import waiter

wait_for = waiter(timeout=40.0, interval=0.2)

VALUE = "pw-" + uuid.uuid4().hex + "-never-shown"
OTHER = "key-" + uuid.uuid4().hex + "-never-shown"


def forms(value: str) -> list[str]:
    """The value as it could leak: plain, base64 (a Secret's data), JSON-escaped."""
    return [value, base64.b64encode(value.encode()).decode(), json.dumps(value)[1:-1]]


def leaks(text_: str, *values) -> list[str]:
    return [form for value in values for form in forms(value) if form in text_]


@pytest.fixture(scope="module")
def team(stack, clusters, login):
    run = uuid.uuid4().hex[:4]
    people = {role: login(f"se-{role}-{run}") for role in ("owner", "developer", "viewer", "outsider")}
    app = f"se-{uuid.uuid4().hex[:6]}"
    assert people["owner"].post("/apps", json={"name": app}).status_code == 201
    for role in ("developer", "viewer"):
        added = people["owner"].put(f"/apps/{app}/members/se-{role}-{run}", json={"role": role})
        assert added.status_code == 200, added.text
    # the outsider owns an app of their own
    assert people["outsider"].post("/apps", json={"name": f"se-out-{run}"}).status_code == 201
    for info in clusters.values():
        wait_for(lambda: kubectl("get", "namespace", app, kubeconfig=info["kubeconfig"], timeout=30).returncode == 0,
                 what=f"namespace {app}")
    return {**people, "app": app, "test": clusters["test"], "stack": stack}


def secret_on(info, app, name):
    return kubectl_json("-n", app, "get", "secret", name, kubeconfig=info["kubeconfig"], timeout=30)


def deployment_on(info, app, name):
    return kubectl_json("-n", app, "get", "deployment", name, kubeconfig=info["kubeconfig"], timeout=30)


def decoded(secret) -> dict:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def deploy(client, app, service, version) -> int:
    sent = client.post(f"/apps/{app}/services/{service}/versions/{version}/deploy", json={"clusters": ["test"]})
    assert sent.status_code == 202, sent.text
    record_id = sent.json()["record_id"]
    record = wait_for(lambda: (lambda r: r if r["finished_at"] else None)(client.get(f"/records/{record_id}").json()),
                      what=f"record {record_id} to finish")
    assert record["status"] == "succeeded", record
    return record_id


def full_log(client, record_id) -> list:
    def done():
        items = client.get(f"/records/{record_id}/logs").json()["items"]
        return items if any(i["line"] == "record succeeded" for i in items) else None
    return wait_for(done, what=f"the log of record {record_id}")


def test_values_reach_only_the_secret_on_the_cluster(team, admin):
    app, dev, test = team["app"], team["developer"], team["test"]
    assert dev.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    made = dev.post(f"/apps/{app}/services/web/versions", json={
        "name": "v1", "image": "nginx:1.25", "port": 80, "replicas": 1, "env": {"MODE": "prod"},
        "secret_env": {"DB_PASSWORD": VALUE, "API_KEY": OTHER}})
    assert made.status_code == 201, made.text
    assert made.json()["secret_env"] == ["API_KEY", "DB_PASSWORD"] and not leaks(made.text, VALUE, OTHER)
    shown = dev.get(f"/apps/{app}/services/web/versions/v1")
    assert shown.json()["secret_env"] == ["API_KEY", "DB_PASSWORD"] and not leaks(shown.text, VALUE, OTHER)
    assert shown.json()["env"] == [{"name": "MODE", "value": "prod"}]  # developers see plain values

    preview = dev.post(f"/apps/{app}/services/web/versions/v1/preview", json={"clusters": ["test"]})
    assert preview.status_code == 200, preview.text
    assert not leaks(preview.text, VALUE, OTHER)
    [secret] = [m for m in preview.json()["manifests"] if m["kind"] == "Secret"]
    assert secret["data"] == {"API_KEY": "<redacted>", "DB_PASSWORD": "<redacted>"}

    record_id = deploy(dev, app, "web", "v1")
    live = secret_on(test, app, "web-v1-secret-env")
    assert live is not None and live["type"] == "Opaque"
    assert decoded(live) == {"API_KEY": OTHER, "DB_PASSWORD": VALUE}
    labels = live["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "mae" and labels["mae.io/app"] == app
    assert (labels["mae.io/service"], labels["mae.io/version"]) == ("web", "v1")
    deployment = deployment_on(test, app, "web-v1")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "envFrom" not in container  # each key by secretKeyRef
    assert container["env"] == [{"name": "MODE", "value": "prod"}] + [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": "web-v1-secret-env", "key": key}}}
        for key in ("API_KEY", "DB_PASSWORD")]
    assert deployment["spec"]["template"]["metadata"]["annotations"]["mae.io/secret-env-checksum"] == \
        live["metadata"]["annotations"]["mae.io/secret-env-checksum"]

    record = dev.get(f"/records/{record_id}")
    lines = full_log(dev, record_id)
    assert any("Secret" in i["line"] and "web-v1-secret-env" in i["line"] for i in lines), lines
    history = dev.get(f"/apps/{app}/records")
    assert not leaks(record.text + json.dumps(lines) + history.text, VALUE, OTHER)

    # After the deploy the preview knows the cluster has these values, still without showing them.
    again = dev.post(f"/apps/{app}/services/web/versions/v1/preview", json={"clusters": ["test"]})
    assert again.status_code == 200 and not leaks(again.text, VALUE, OTHER)
    [on_test] = again.json()["diff"]
    assert not [c for d in on_test["diff"] for c in d["changes"] if c["path"].startswith("data")], on_test

    audit = wait_for(lambda: [e for e in admin.get("/admin/audit", params={
        "actor": dev_name(team), "action": "version_secret_env_changed"}).json()["items"]
        if e["target"] == f"app:{app}/service:web/version:v1"], what="the audit entry")
    assert audit[0]["details"]["names"] == ["API_KEY", "DB_PASSWORD"]
    assert not leaks(json.dumps(audit), VALUE, OTHER)

    # MariaDB has the sealed form only, bound to the row, and nothing in clear anywhere.
    engine = create_engine(team["stack"].env["DB_URL"])
    try:
        with engine.connect() as conn:
            sealed, keys = conn.execute(text(
                "SELECT secret_env_sealed, secret_env_keys FROM deploy_versions WHERE app = :a AND name = 'v1'"),
                {"a": app}).one()
            assert sealed.startswith("v1.") and not leaks(sealed, VALUE, OTHER)
            assert json.loads(keys) == ["API_KEY", "DB_PASSWORD"]
            assert "deploy_versions.app" in database_holds(conn, app)  # the search finds what is there
            assert not database_holds(conn, VALUE, OTHER)
    finally:
        engine.dispose()

    # No process of the stack logged a value (the sandbox is the cluster: it holds them).
    for log in sorted(team["stack"].log_dir.glob("*.log")):
        if not log.name.startswith("sandbox"):
            assert not leaks(log.read_text(errors="replace"), VALUE, OTHER), log.name


def dev_name(team) -> str:
    return team["developer"].get("/me").json()["username"]


def database_holds(conn, *values) -> list[str]:
    """Every text-like column of every table of the stack's database, searched for the values."""
    found = []
    columns = conn.execute(text(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = DATABASE() "
        "AND data_type IN ('char', 'varchar', 'text', 'mediumtext', 'longtext', 'tinytext', 'json', "
        "'longblob', 'blob', 'mediumblob')")).all()
    patterns = {f"v{i}": f"%{form}%" for i, form in enumerate(f for value in values for f in forms(value))}
    for table, column in columns:
        where = " OR ".join(f"CAST(`{column}` AS CHAR) LIKE :{key}" for key in patterns)
        if conn.execute(text(f"SELECT 1 FROM `{table}` WHERE {where} LIMIT 1"), patterns).first():
            found.append(f"{table}.{column}")
    return found


def test_viewers_see_env_names_without_values_and_outsiders_see_nothing(team):
    app, dev, viewer, outsider = team["app"], team["developer"], team["viewer"], team["outsider"]
    assert dev.post(f"/apps/{app}/services", json={"name": "shown"}).status_code == 201
    made = dev.post(f"/apps/{app}/services/shown/versions", json={
        "name": "v1", "image": "nginx:1.25", "port": 80, "env": {"MODE": "prod", "PLAIN_TOKEN": OTHER},
        "secret_env": {"DB_PASSWORD": VALUE}})
    assert made.status_code == 201, made.text
    one = viewer.get(f"/apps/{app}/services/shown/versions/v1")
    assert one.status_code == 200, one.text
    assert one.json()["env"] == [{"name": "MODE", "value": None}, {"name": "PLAIN_TOKEN", "value": None}]
    assert one.json()["secret_env"] == ["DB_PASSWORD"] and one.json()["image"] == "nginx:1.25"
    listed = viewer.get(f"/apps/{app}/services/shown/versions")
    service = viewer.get(f"/apps/{app}/services/shown")
    assert [v["env"] for v in listed.json()["items"]] == [one.json()["env"]]
    assert [v["env"] for v in service.json()["versions"]] == [one.json()["env"]]
    assert not leaks(one.text + listed.text + service.text, VALUE, OTHER)
    assert viewer.patch(f"/apps/{app}/services/shown/versions/v1",
                        json={"secret_env": {"DB_PASSWORD": "x"}}).status_code == 403
    assert viewer.post(f"/apps/{app}/services/shown/versions/v1/preview", json={}).status_code == 403
    assert dev.get(f"/apps/{app}/services/shown/versions/v1").json()["env"][1]["value"] == OTHER
    for answer in (outsider.get(f"/apps/{app}/services/shown/versions/v1"),
                   outsider.get(f"/apps/{app}/services/shown/versions"),
                   outsider.patch(f"/apps/{app}/services/shown/versions/v1", json={"secret_env": {"X": "y"}}),
                   outsider.post(f"/apps/{app}/services/shown/versions/v1/preview", json={})):
        assert answer.status_code == 404, answer.text
        assert not leaks(answer.text, VALUE, OTHER)


def test_bad_secret_env_is_422_naming_the_field_never_the_value(team):
    app, dev = team["app"], team["developer"]
    if dev.get(f"/apps/{app}/services/bad").status_code == 404:
        assert dev.post(f"/apps/{app}/services", json={"name": "bad"}).status_code == 201
    base = {"name": "v1", "image": "nginx:1.25", "port": 80}
    for body, field in (({"env": {"DB_PASSWORD": "x"}, "secret_env": {"DB_PASSWORD": VALUE}}, "secret_env.DB_PASSWORD"),
                        ({"secret_env": {"9LIVES": VALUE}}, "secret_env"),
                        ({"secret_env": {"DB_PASSWORD": VALUE + "x" * 70000}}, "secret_env.DB_PASSWORD"),
                        ({"secret_env": [VALUE]}, "secret_env")):
        answer = dev.post(f"/apps/{app}/services/bad/versions", json={**base, **body})
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["details"]["field"] == field
        assert not leaks(answer.text, VALUE)
    collision = dev.post(f"/apps/{app}/services/bad/versions", json={
        **base, "env": {"DB_PASSWORD": "x"}, "secret_env": {"DB_PASSWORD": VALUE}})
    assert "both in 'env' and in 'secret_env'" in collision.json()["error"]["message"]


def test_a_change_rolls_the_pods_a_rollback_takes_today_s_values_and_a_delete_takes_the_secret(team):
    app, dev, test = team["app"], team["developer"], team["test"]
    assert dev.post(f"/apps/{app}/services", json={"name": "api"}).status_code == 201
    assert dev.post(f"/apps/{app}/services/api/versions", json={
        "name": "v1", "image": "nginx:1.25", "port": 80, "replicas": 1,
        "secret_env": {"TOKEN": "one"}}).status_code == 201
    first = deploy(dev, app, "api", "v1")
    before = deployment_on(test, app, "api-v1")
    checksum = before["spec"]["template"]["metadata"]["annotations"]["mae.io/secret-env-checksum"]
    assert decoded(secret_on(test, app, "api-v1-secret-env")) == {"TOKEN": "one"}

    changed = dev.patch(f"/apps/{app}/services/api/versions/v1", json={"secret_env": {"TOKEN": "two", "EXTRA": "x"}})
    assert changed.status_code == 200 and changed.json()["secret_env"] == ["EXTRA", "TOKEN"]
    kept = dev.patch(f"/apps/{app}/services/api/versions/v1", json={"replicas": 1})  # absent: kept
    assert kept.json()["secret_env"] == ["EXTRA", "TOKEN"]
    deploy(dev, app, "api", "v1")
    assert decoded(secret_on(test, app, "api-v1-secret-env")) == {"TOKEN": "two", "EXTRA": "x"}
    after = deployment_on(test, app, "api-v1")
    assert after["spec"]["template"]["metadata"]["annotations"]["mae.io/secret-env-checksum"] != checksum
    assert after["metadata"]["generation"] > before["metadata"]["generation"]  # a new rollout

    dropped = dev.patch(f"/apps/{app}/services/api/versions/v1",
                        json={"secret_env": {"TOKEN": "three", "EXTRA": None}})
    assert dropped.json()["secret_env"] == ["TOKEN"]
    deploy(dev, app, "api", "v1")
    assert decoded(secret_on(test, app, "api-v1-secret-env")) == {"TOKEN": "three"}  # EXTRA left the cluster

    back = dev.post(f"/records/{first}/rollback")
    assert back.status_code == 202, back.text
    record = wait_for(lambda: (lambda r: r if r["finished_at"] else None)(
        dev.get(f"/records/{back.json()['record_id']}").json()), what="the rollback")
    assert record["status"] == "succeeded", record
    assert decoded(secret_on(test, app, "api-v1-secret-env")) == {"TOKEN": "three"}  # today's, not "one"

    gone = dev.delete(f"/apps/{app}/services/api/versions/v1")
    assert gone.status_code == 202, gone.text
    wait_for(lambda: secret_on(test, app, "api-v1-secret-env") is None, what="the Secret to leave the cluster")
    wait_for(lambda: deployment_on(test, app, "api-v1") is None, what="the Deployment to leave the cluster")
    engine = create_engine(team["stack"].env["DB_URL"])
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT secret_env_sealed, secret_env_keys FROM deploy_versions "
                                    "WHERE app = :a AND service = 'api' AND name = 'v1'"), {"a": app}).one()
            assert tuple(row) == (None, None)
    finally:
        engine.dispose()
    # a version made again under that name starts without them
    again = dev.post(f"/apps/{app}/services/api/versions", json={"name": "v1", "image": "nginx:1.25", "port": 80})
    assert again.status_code == 201 and again.json()["secret_env"] == []
