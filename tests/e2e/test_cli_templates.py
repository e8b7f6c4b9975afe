"""`mae templates preview|update|delete` and `mae resources` (mae_cli/templates.py,
mae_cli/resources.py) against the e2e stack (issue 22). A preview prints what the template
renders as YAML, and a refusal names the policy's rule, object and path (exit 1); a change
and a deletion are read back through the API; the resource tree is what kubectl sees on the
sandbox cluster, and ``-w`` follows a scale. Someone with no role in the app, or a viewer,
gets exit 1 and the API's words, and nothing changed."""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import uuid

import pytest
import yaml

from services.deploy.domain import templates
from tests.e2e.test_cli import MAE, run
from tests.e2e.test_cli_attackers import finished
from tests.kube import kubectl_json
from tests.waiting import waiter

wait_for = waiter(timeout=60.0, interval=0.3)
EXIT_ERROR = 1  # mae_cli/common.py: the API refused
BUILTIN = templates.BUILTINS["default-version"]
IMAGE = "          image: {{ image | tojson }}\n"
HOSTILE = BUILTIN["body"].replace(IMAGE, IMAGE + "          securityContext: {privileged: true}\n", 1)
GOOD = {"kind": "version", "body": BUILTIN["body"], "fields": BUILTIN["fields"]}


@pytest.fixture(scope="module")
def team(stack, login, clusters, tmp_path_factory):
    """An app with template ``mine`` and service web v1 (one replica) on ``test``; a viewer
    of it; an outsider who owns an app of their own with a template of the same name."""
    run_id = uuid.uuid4().hex[:6]
    owner, viewer, outsider = (login(f"ct-{who}-{run_id}") for who in ("owner", "viewer", "outsider"))
    app, other = f"ct-{run_id}", f"ct-own-{run_id}"
    assert owner.post("/apps", json={"name": app}).status_code == 201
    assert owner.put(f"/apps/{app}/members/ct-viewer-{run_id}", json={"role": "viewer"}).status_code == 200
    assert outsider.post("/apps", json={"name": other}).status_code == 201
    for who, where in ((owner, app), (outsider, other)):
        assert who.post(f"/apps/{where}/templates", json={"name": "mine", **GOOD}).status_code == 201
    for path, body in ((f"/apps/{app}/services", {"name": "web"}),
                       (f"/apps/{app}/services/web/versions", {"name": "v1", "image": "nginx:1.25", "port": 80})):
        made = owner.post(path, json=body)
        assert made.status_code == 201, made.text
    sent = owner.post(f"/apps/{app}/services/web/versions/v1/deploy", json={"clusters": ["test"]})
    assert sent.status_code == 202, sent.text
    finished(owner, sent.json()["record_id"])
    home = tmp_path_factory.mktemp("cli-templates")
    files = {"body": home / "body.yaml.j2", "hostile": home / "hostile.yaml.j2", "fields": home / "fields.json",
             "definition": home / "mine.yaml"}
    files["body"].write_text(BUILTIN["body"])
    files["hostile"].write_text(HOSTILE)
    files["fields"].write_text(json.dumps(BUILTIN["fields"]))
    files["definition"].write_text(yaml.safe_dump({"name": "mine", **GOOD}))

    def mae(*args, who=owner, stdin=None):
        if stdin is None:
            return run(home, *args, url=stack.url, token=who.token)
        return subprocess.run([MAE, *args], env=env(home, stack.url, who.token), capture_output=True, text=True,
                              timeout=120, input=stdin)

    return {"app": app, "other": other, "owner": owner, "viewer": viewer, "outsider": outsider, "mae": mae,
            "files": {k: str(v) for k, v in files.items()}, "home": home, "url": stack.url,
            "info": clusters["test"]}


def env(home, url: str, token: str) -> dict:
    values = {k: v for k, v in os.environ.items() if not k.startswith("MAE_")}
    values.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "NO_COLOR": "1", "COLUMNS": "200",
                   "MAE_URL": url, "MAE_TOKEN": token})
    return values


def app_templates(owner, app: str) -> list[tuple]:
    return sorted((t["name"], t["kind"], t["body"], json.dumps(t["fields"]))
                  for t in owner.get("/templates").json()["items"] if t.get("app") == app)


def test_preview_prints_the_rendered_manifests_as_yaml(team):
    mae, app, files = team["mae"], team["app"], team["files"]
    shown = mae("templates", "preview", app, "-f", files["body"], "--kind", "version", "--fields", files["fields"],
                "--set", "service_port=8081")
    assert shown.returncode == 0, shown.stderr
    manifests = {m["kind"]: m for m in yaml.safe_load_all(shown.stdout)}
    assert set(manifests) == {"Deployment", "Service"}
    assert manifests["Service"]["spec"]["ports"][0]["port"] == 8081
    assert manifests["Deployment"]["metadata"]["namespace"] == app
    assert '"service_port": 8081' in shown.stderr  # the values it saw, for the person, not in the YAML
    # the same from the file `templates create` reads, as a document for scripts
    as_json = mae("templates", "preview", app, "-f", files["definition"], "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    answer = json.loads(as_json.stdout)
    assert [m["kind"] for m in answer["manifests"]] == [m["kind"] for m in yaml.safe_load_all(shown.stdout)]
    assert answer["values"] == {"progress_deadline_seconds": 600, "service_port": 80}
    # a raw body without --kind, or a --set without '=': wrong usage
    assert mae("templates", "preview", app, "-f", files["body"]).returncode == 2
    assert mae("templates", "preview", app, "-f", files["definition"], "--set", "service_port").returncode == 2
    assert app_templates(team["owner"], app) == [("mine", "version", BUILTIN["body"], json.dumps(BUILTIN["fields"]))]


def test_a_refused_preview_names_the_rule_object_and_path(team):
    mae, app, files = team["mae"], team["app"], team["files"]
    for output in ((), ("-o", "json")):
        refused = mae("templates", "preview", app, "-f", files["hostile"], "--kind", "version", "--fields",
                      files["fields"], *output)
        assert refused.returncode == EXIT_ERROR and refused.stdout == "", (refused.stdout, refused.stderr)
        lines = [line.strip() for line in refused.stderr.splitlines()]
        assert lines[0].startswith("Error: The workload policy refuses Deployment/sample-v1")
        assert "HTTP 422, policy_violation" in refused.stderr
        assert lines[1:4] == ["rule: privileged", "object: Deployment/sample-v1",
                              "path: spec.template.spec.containers[0].securityContext.privileged"]
    broken = team["home"] / "broken.j2"
    broken.write_text("a: {{ b")
    invalid = mae("templates", "preview", app, "-f", str(broken), "--kind", "version")
    assert invalid.returncode == EXIT_ERROR and "not valid jinja2 (line 1)" in invalid.stderr, invalid.stderr
    assert "Traceback" not in invalid.stderr + refused.stderr


def test_update_and_delete_a_template(team):
    mae, app, owner, files = team["mae"], team["app"], team["owner"], team["files"]
    assert owner.post(f"/apps/{app}/templates", json={"name": "spare", **GOOD}).status_code == 201
    changed_body = BUILTIN["body"] + "# changed by the cli\n"
    (team["home"] / "changed.j2").write_text(changed_body)
    changed = mae("templates", "update", app, "spare", "-f", str(team["home"] / "changed.j2"), "--kind", "version",
                  "-o", "json")  # without --fields: the template keeps its own
    assert changed.returncode == 0, changed.stderr
    assert json.loads(changed.stdout)["body"] == changed_body
    assert json.loads(changed.stdout)["fields"] == json.loads(json.dumps(BUILTIN["fields"]))
    assert ("spare", "version", changed_body, json.dumps(BUILTIN["fields"])) in app_templates(owner, app)
    # a change the policy refuses: its rule on stderr, the template as it was
    refused = mae("templates", "update", app, "spare", "-f", files["hostile"], "--kind", "version")
    assert refused.returncode == EXIT_ERROR and "rule: privileged" in refused.stderr, refused.stderr
    assert ("spare", "version", changed_body, json.dumps(BUILTIN["fields"])) in app_templates(owner, app)
    # from the file `templates create` reads, its name the same
    back = mae("templates", "update", app, "spare", "-f", files["definition"])
    assert back.returncode == EXIT_ERROR and "cannot be changed" in back.stderr  # the file says name: mine
    assert mae("templates", "update", app, "mine", "-f", files["definition"]).returncode == 0

    # delete asks for the typed name: no answer, or another name, deletes nothing
    before = app_templates(owner, app)
    assert mae("templates", "delete", app, "spare").returncode == EXIT_ERROR  # no terminal, nothing typed
    wrong = mae("templates", "delete", app, "spare", stdin="mine\n")
    assert wrong.returncode == EXIT_ERROR and "Not deleted" in wrong.stderr, wrong.stderr
    assert app_templates(owner, app) == before
    typed = mae("templates", "delete", app, "spare", stdin="spare\n")
    assert typed.returncode == 0, typed.stderr
    assert "spare" not in [t[0] for t in app_templates(owner, app)]
    assert owner.post(f"/apps/{app}/templates", json={"name": "spare", **GOOD}).status_code == 201
    gone = mae("templates", "delete", app, "spare", "--yes", "-o", "json")
    assert gone.returncode == 0 and json.loads(gone.stdout) == {"app": app, "deleted": "spare"}, gone.stderr
    assert [t[0] for t in app_templates(owner, app)] == ["mine"]
    missing = mae("templates", "delete", app, "spare", "--yes")
    assert missing.returncode == EXIT_ERROR and "HTTP 404" in missing.stderr


def kube(team, *args):
    return kubectl_json("-n", team["app"], *args, kubeconfig=team["info"]["kubeconfig"], timeout=30)


def settled(team, replicas: int):
    """The tree (-o json) once the current ReplicaSet has ``replicas`` ready pods and no old pods."""
    shown = team["mae"]("resources", f"{team['app']}/web/v1", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    (item,) = json.loads(shown.stdout)["items"]
    current = [r for r in item["replicasets"] if r["current"]]
    if len(current) != 1 or len(current[0]["pods"]) != replicas or not all(p["ready"] for p in current[0]["pods"]) \
            or any(r["pods"] for r in item["replicasets"] if not r["current"]):
        return None
    return item


def test_resources_prints_the_tree_kubectl_sees(team):
    mae, app = team["mae"], team["app"]
    item = wait_for(lambda: settled(team, 1), what="one ready pod")
    assert (item["cluster"], item["reachable"], item["deployment"]["name"]) == ("test", True, "web-v1")
    sets = kube(team, "get", "replicasets", "-l", "mae.io/service=web,mae.io/version=v1")["items"]
    pods = [p for p in kube(team, "get", "pods", "-l", "mae.io/service=web,mae.io/version=v1")["items"]
            if not p["metadata"].get("deletionTimestamp")]
    assert sorted(r["name"] for r in item["replicasets"]) == sorted(r["metadata"]["name"] for r in sets)
    assert sorted(p["name"] for r in item["replicasets"] for p in r["pods"]) == \
        sorted(p["metadata"]["name"] for p in pods)

    # the same as text: cluster, then Deployment, ReplicaSets and pods each one level deeper
    text = mae("resources", app, "web", "v1", "--cluster", "test")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == "test (test)"
    assert lines[1].startswith("  Deployment web-v1  1/1 ready") and "Available=True" in lines[1]
    (current,) = [r for r in item["replicasets"] if r["current"]]
    assert f"    ReplicaSet {current['name']}  revision {current['revision']}  current  1/1 ready" in lines
    (pod,) = current["pods"]
    assert pod["node"] == pods[0]["spec"].get("nodeName")
    assert f"      Pod {pod['name']}  Running  ready  restarts 0" + (f"  on {pod['node']}" if pod["node"] else "") \
        in lines, lines
    assert yaml.safe_load(mae("resources", f"{app}/web/v1", "-o", "yaml").stdout) == {"items": [item]}
    assert mae("resources", app, "web").returncode == 2
    elsewhere = mae("resources", f"{app}/web/v1", "--cluster", "prod")
    assert elsewhere.returncode == EXIT_ERROR and "HTTP 404" in elsewhere.stderr


def test_resources_watch_follows_a_scale_until_interrupted(team, request):
    app, owner = team["app"], team["owner"]
    wait_for(lambda: settled(team, 1), what="one ready pod")
    proc = subprocess.Popen([MAE, "resources", f"{app}/web/v1", "-w", "-o", "json"],
                            env=env(team["home"], team["url"], owner.token), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    request.addfinalizer(lambda: (proc.kill(), proc.wait()) if proc.poll() is None else None)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    first = json.loads(lines.get(timeout=30))
    assert [len(r["pods"]) for r in first["items"][0]["replicasets"] if r["current"]] == [1]
    request.addfinalizer(lambda: scale(owner, app, 1))  # back to one pod, for the other tests
    scale(owner, app, 2)

    def two_ready():
        tree = json.loads(lines.get(timeout=60))
        current = [r for r in tree["items"][0]["replicasets"] if r["current"]]
        return len(current[0]["pods"]) == 2 and all(p["ready"] for p in current[0]["pods"]) or None

    wait_for(two_ready, what="the watched tree to show 2 ready pods")
    assert proc.poll() is None  # still watching: it ends when the person stops it
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0, proc.stderr.read()


def scale(owner, app: str, replicas: int) -> None:
    sent = owner.post(f"/apps/{app}/services/web/versions/v1/scale", json={"replicas": replicas, "clusters": ["test"]})
    assert sent.status_code == 202, sent.text
    finished(owner, sent.json()["record_id"])


@pytest.mark.parametrize("who", ["outsider", "viewer"])
def test_someone_without_the_right_role_is_refused_and_nothing_changes(team, who):
    mae, app, owner, files = team["mae"], team["app"], team["owner"], team["files"]
    attacker = team[who]
    before, theirs = app_templates(owner, app), app_templates(team["outsider"], team["other"])
    deployment = kube(team, "get", "deployment", "web-v1")
    status, words = (404, f"Application '{app}' was not found.") if who == "outsider" else \
        (403, f"Your role in '{app}' (viewer) does not allow this.")
    attacks = [("templates", "preview", app, "-f", files["definition"]),
               ("templates", "update", app, "mine", "-f", files["hostile"], "--kind", "version"),
               ("templates", "update", app, "mine", "-f", files["definition"]),
               ("templates", "delete", app, "mine", "--yes")]
    if who == "outsider":  # a viewer may read the tree
        attacks.append(("resources", f"{app}/web/v1"))
    for args in attacks:
        for output in ((), ("-o", "json")):
            result = mae(*args, *output, who=attacker)
            said = " ".join(result.stderr.split())
            assert result.returncode == EXIT_ERROR and result.stdout == "", (args, result.stdout, result.stderr)
            assert said.startswith("Error:") and words in said and f"HTTP {status}" in said, (args, said)
            assert "Traceback" not in said
    assert app_templates(owner, app) == before
    assert app_templates(team["outsider"], team["other"]) == theirs
    after = kube(team, "get", "deployment", "web-v1")
    assert after["metadata"]["generation"] == deployment["metadata"]["generation"]
    assert after["spec"] == deployment["spec"]
    if who == "viewer":
        read = mae("resources", f"{app}/web/v1", "-o", "json", who=attacker)
        assert read.returncode == 0 and json.loads(read.stdout)["items"][0]["deployment"]["name"] == "web-v1"
