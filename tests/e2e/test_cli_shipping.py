"""The `mae` commands for shipping and what runs (mae_cli/shipping.py, mae_cli/runtime.py)
against the e2e stack's sandbox clusters: route, scale, restart, retire, pods, logs (a tail
and a followed stream), events, ingresses, members and the CI link. Each drives a real
change and checks it through the API or with kubectl. One app serves the module: its
service ``web`` runs v1 (routed, read by pods/logs/events) and v2 (scaled, restarted,
retired) on the ``test`` cluster; each test also runs alone."""
import json
import os
import signal
import subprocess
import time
import uuid

import pytest

from tests.e2e.test_cli import MAE, run
from tests.fakes.drone import FakeDrone
from tests.kube import kubectl_json
from tests.waiting import waiter

wait_for = waiter(timeout=60.0, interval=0.3)


@pytest.fixture(scope="module")
def shipped(stack, login, clusters, tmp_path_factory):
    run_id = uuid.uuid4().hex[:4]
    owner = login(f"cs-owner-{run_id}")
    app = f"cs-{uuid.uuid4().hex[:6]}"
    assert owner.post("/apps", json={"name": app}).status_code == 201
    assert owner.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    records = []
    for ver in ("v1", "v2"):
        made = owner.post(f"/apps/{app}/services/web/versions",
                          json={"name": ver, "image": "nginx:1.25", "port": 80, "replicas": 1})
        assert made.status_code == 201, made.text
        sent = owner.post(f"/apps/{app}/services/web/versions/{ver}/deploy", json={"env": "test"})
        assert sent.status_code == 202, sent.text
        records.append(sent.json()["record_id"])

    def succeeded(record_id):
        record = wait_for(lambda: (lambda r: r if r.get("finished_at") else None)(
            owner.get(f"/records/{record_id}").json()), what=f"record {record_id}")
        assert record["status"] == "succeeded", record

    for record_id in records:
        succeeded(record_id)
    routed = owner.post(f"/apps/{app}/services/web/route", json={"version": "v1", "env": "test"})
    assert routed.status_code == 202, routed.text
    succeeded(routed.json()["record_id"])
    home = tmp_path_factory.mktemp("cli-shipping")

    def mae(*args, token=owner.token, **kw):
        return run(home, *args, url=stack.url, token=token, **kw)

    return {"owner": owner, "app": app, "mae": mae, "home": home, "run": run_id, "stack": stack,
            "info": clusters["test"], "login": login, "records": records}


def kube(shipped, *args):
    return kubectl_json("-n", shipped["app"], *args, kubeconfig=shipped["info"]["kubeconfig"], timeout=30)


def test_route_waits_for_the_record_and_a_refused_route_says_why(shipped):
    mae, app, owner = shipped["mae"], shipped["app"], shipped["owner"]
    stopped = mae("route", f"{app}/web", "--stop", "--env", "test", "--wait")
    assert stopped.returncode == 0, stopped.stderr
    assert owner.get(f"/apps/{app}/services/web").json()["routed"] == {"test": None}
    assert kube(shipped, "get", "service", "web", "--ignore-not-found") is None
    routed = mae("route", f"{app}/web", "v1", "--env", "test", "--wait", "-o", "json")
    assert routed.returncode == 0, routed.stderr
    record = json.loads(routed.stdout)
    assert (record["action"], record["version"], record["status"]) == ("route", "v1", "succeeded")
    assert owner.get(f"/apps/{app}/services/web").json()["routed"] == {"test": "v1"}
    service = kube(shipped, "get", "service", "web")
    assert service["spec"]["selector"]["mae.io/version"] == "v1"

    # a version never deployed there: the API's 409 and its words, exit 1, no retry loop
    made = owner.post(f"/apps/{app}/services/web/versions", json={"name": "v9", "image": "nginx:1.25", "port": 80})
    assert made.status_code == 201, made.text
    started = time.monotonic()
    refused = mae("route", f"{app}/web", "v9", "--cluster", "test", "--wait")
    assert refused.returncode == 1 and refused.stdout == ""
    assert "HTTP 409" in refused.stderr and "version_not_ready" in refused.stderr, refused.stderr
    assert time.monotonic() - started < 10
    assert owner.get(f"/apps/{app}/services/web").json()["routed"] == {"test": "v1"}
    # usage errors: neither VERSION nor --stop, both, or no --env/--cluster
    assert mae("route", f"{app}/web", "--env", "test").returncode == 2
    assert mae("route", f"{app}/web", "v1", "--stop", "--env", "test").returncode == 2
    assert mae("route", f"{app}/web", "v1").returncode == 2


def test_scale_restart_and_retire_a_version(shipped):
    mae, app = shipped["mae"], shipped["app"]
    scaled = mae("scale", f"{app}/web/v2", "2", "--env", "test", "--wait")
    assert scaled.returncode == 0, scaled.stderr
    assert "succeeded" in scaled.stdout
    assert kube(shipped, "get", "deployment", "web-v2")["spec"]["replicas"] == 2

    restarted = mae("restart", f"{app}/web/v2", "--cluster", "test", "--wait", "-o", "json")
    assert restarted.returncode == 0, restarted.stderr
    assert json.loads(restarted.stdout)["status"] == "succeeded"
    template = kube(shipped, "get", "deployment", "web-v2")["spec"]["template"]["metadata"]
    assert "kubectl.kubernetes.io/restartedAt" in (template.get("annotations") or {})

    # the routed v1 cannot be retired: the API's words, exit 1
    kept = mae("retire", f"{app}/web/v1", "--env", "test")
    assert kept.returncode == 1 and "version_routed" in kept.stderr, kept.stderr
    retired = mae("retire", f"{app}/web/v2", "--env", "test", "--wait")
    assert retired.returncode == 0, retired.stderr
    assert kube(shipped, "get", "deployment", "web-v2", "--ignore-not-found") is None
    assert kube(shipped, "get", "deployment", "web-v1") is not None
    # without --wait: the record's id, as JSON
    again = mae("scale", f"{app}/web/v1", "1", "--env", "test", "-o", "json")
    assert again.returncode == 0, again.stderr
    assert isinstance(json.loads(again.stdout)["record_id"], int)
    assert mae("scale", f"{app}/web/v1", "99", "--env", "test").returncode == 2
    # --wait that runs out before the rolling restart finishes: exit 4, the record named
    late = mae("restart", f"{app}/web/v1", "--env", "test", "--wait", "--timeout", "0")
    assert late.returncode == 4 and "Gave up waiting" in late.stderr, late.stdout + late.stderr


def test_pods_logs_and_events_of_a_version(shipped):
    mae, app = shipped["mae"], shipped["app"]
    listed = mae("pods", f"{app}/web/v1", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    names = sorted(p["name"] for p in json.loads(listed.stdout)["items"])
    live = kube(shipped, "get", "pods", "-l", "mae.io/version=v1,mae.io/service=web")["items"]
    assert names and names == sorted(p["metadata"]["name"] for p in live)
    table = mae("pods", f"{app}/web/v1", "--cluster", "test")
    assert table.returncode == 0 and names[0] in table.stdout and "Running" in table.stdout

    tail = mae("logs", f"{app}/web/v1", "--cluster", "test", "--tail", "2")
    assert tail.returncode == 0, tail.stderr
    lines = tail.stdout.splitlines()
    assert lines and all(line.split(" ", 1)[0] in names for line in lines), lines
    as_json = mae("logs", f"{app}/web/v1", "--tail", "1", "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert {item["pod"] for item in json.loads(as_json.stdout)["items"]} <= set(names)
    # a record's log is still `mae logs RECORD`
    record_log = mae("logs", str(shipped["records"][0]), "-o", "json")
    assert record_log.returncode == 0 and json.loads(record_log.stdout)["items"], record_log.stderr
    assert mae("logs", str(shipped["records"][0]), "--tail", "1").returncode == 2
    missing = mae("logs", f"{app}/web/nope")
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr

    events = mae("events", app, "--version", "v1", "-o", "json")
    assert events.returncode == 0, events.stderr
    items = json.loads(events.stdout)["items"]
    assert items and all("web-v1" in e["object"] for e in items)
    assert any(e["reason"] == "ScalingReplicaSet" for e in items)


def test_logs_follow_streams_until_interrupted(shipped):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAE_")}
    env.update({"HOME": str(shipped["home"]), "MAE_URL": shipped["stack"].url,
                "MAE_TOKEN": shipped["owner"].token, "NO_COLOR": "1"})
    proc = subprocess.Popen([MAE, "logs", f"{shipped['app']}/web/v1", "--tail", "1", "-f"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        got, deadline = [], time.monotonic() + 20
        while time.monotonic() < deadline and sum("seq=" in g for g in got) < 3:
            line = proc.stdout.readline()
            if not line:
                break
            got.append(line)
        assert sum("seq=" in g for g in got) >= 3, (got, proc.poll())
        assert proc.poll() is None                 # still streaming: it ends when the person stops it
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ingresses_create_deploy_update_and_delete(shipped):
    mae, app, run_id = shipped["mae"], shipped["app"], shipped["run"]
    host = f"www-{run_id}.{app}.example.com"
    made = mae("ingresses", "create", f"{app}/www", "--host", host, "--route", "/=web", "--route", "/v1=web:v1@80",
               "-o", "json")
    assert made.returncode == 0, made.stderr
    assert [(r["path"], r["service"], r["version"]) for r in json.loads(made.stdout)["routes"]] == \
        [("/", "web", None), ("/v1", "web", "v1")]
    assert mae("ingresses", "create", f"{app}/bad", "--host", host, "--route", "nopath").returncode == 2

    deployed = mae("ingresses", "deploy", f"{app}/www", "--cluster", "test", "--wait")
    assert deployed.returncode == 0, deployed.stderr
    live = kube(shipped, "get", "ingress", "www")
    assert [r["host"] for r in live["spec"]["rules"]] == [host]

    moved = f"test-{run_id}.{app}.example.com"
    changed = mae("ingresses", "update", f"{app}/www", "--host-test", moved, "-o", "json")
    assert changed.returncode == 0, changed.stderr
    assert json.loads(changed.stdout)["hosts"]["test"] == moved
    shown = mae("ingresses", "show", f"{app}/www")
    assert shown.returncode == 0 and moved in shown.stdout and "test" in shown.stdout
    assert "www" in mae("ingresses", "list", app).stdout

    gone = mae("ingresses", "delete", f"{app}/www", "--wait")
    assert gone.returncode == 0, gone.stderr
    assert kube(shipped, "get", "ingress", "www", "--ignore-not-found") is None
    assert mae("ingresses", "show", f"{app}/www").returncode == 1


def test_members_set_list_and_remove(shipped):
    mae, app, owner = shipped["mae"], shipped["app"], shipped["owner"]
    name = f"cs-member-{shipped['run']}"
    member = shipped["login"](name)
    assert mae("members", "set", app, name, "--role", "viewer").returncode == 0
    assert (name, "viewer") in [(m["username"], m["role"]) for m in owner.get(f"/apps/{app}/members").json()["items"]]
    listed = mae("members", "list", app, "-o", "json")
    assert listed.returncode == 0 and name in [m["username"] for m in json.loads(listed.stdout)["items"]]
    # a viewer may not change members: the API's refusal, exit 1
    refused = mae("members", "set", app, name, "--role", "owner", token=member.token)
    assert refused.returncode == 1 and "HTTP 403" in refused.stderr
    assert mae("members", "remove", app, name).returncode == 0
    assert name not in [m["username"] for m in owner.get(f"/apps/{app}/members").json()["items"]]
    assert mae("members", "set", app, name, "--role", "chief").returncode == 2


def test_ci_link_shows_the_webhook_url_never_the_secrets(shipped):
    mae, app = shipped["mae"], shipped["app"]
    token, secret = "drone-" + uuid.uuid4().hex, "hook-" + uuid.uuid4().hex
    with FakeDrone(token, repo=f"team/web-{shipped['run']}") as drone:
        drone.add_build(1, "success", "refs/tags/v1")
        linked = mae("ci", "link", f"{app}/web", "--provider", "drone", "--server", drone.base_url, "--repo",
                     drone.repo, "--token", token, "--image", "registry.local/team/web", "--webhook-secret", secret,
                     "--auto-deploy-env", "test", "--auto-route")
        assert linked.returncode == 0, linked.stderr
        assert f"{shipped['stack'].url}/api/v1/hooks/ci/drone/" in linked.stdout
        shown = mae("ci", "show", f"{app}/web", "-o", "json")
        assert shown.returncode == 0, shown.stderr
        link = json.loads(shown.stdout)
        assert link["webhook_url"].startswith("/api/v1/hooks/ci/drone/") and link["auto_route"] is True
        for out in (linked, shown):
            assert token not in out.stdout + out.stderr and secret not in out.stdout + out.stderr
        builds = mae("ci", "builds", f"{app}/web", "-o", "json")
        assert builds.returncode == 0, builds.stderr
        assert [b["number"] for b in json.loads(builds.stdout)["items"]] == [1]
        built = mae("ci", "build", f"{app}/web", "--ref", "main", "-o", "json")
        assert built.returncode == 0, built.stderr
        assert json.loads(built.stdout)["number"] == 2 and drone.builds[0]["ref"] == "refs/heads/main"
    assert mae("ci", "unlink", f"{app}/web").returncode == 0
    assert mae("ci", "show", f"{app}/web").returncode == 1
