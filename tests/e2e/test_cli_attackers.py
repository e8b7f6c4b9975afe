"""The `mae` commands that change an application (restart, scale, retire, route, deploy,
ingresses create/update/deploy/delete, ci link/unlink/build), run against someone else's
application by a plain user of another app and by a viewer of it (SECURITY.md, API.md).

Each refusal is exit 1 (mae_cli/main.py's table: "an error"), the API's own words on
stderr and no traceback, nothing on stdout even with ``-o json|yaml``; to the outsider the app
does not exist (the same words as for an app that really does not exist). Afterwards
nothing changed: the cluster's objects read with kubectl, the app's records, ingresses and
CI link read through the API, and no CI server was called."""
from __future__ import annotations

import json
import uuid

import pytest

from tests.e2e.test_cli import run
from tests.e2e.test_console_viewers import drone_linked
from tests.fakes.drone import FakeDrone
from tests.kube import kubectl_json
from tests.waiting import waiter

wait_for = waiter(timeout=90.0, interval=0.3)
EXIT_ERROR = 1  # mae_cli/common.py: EXIT_ERROR, the API refused


@pytest.fixture(scope="module")
def target(stack, login, clusters, tmp_path_factory):
    """Someone's app: service web, v1 deployed and routed on ``test``, ingress www deployed
    there, the service linked to a Drone; a viewer of it, and an outsider with an app of
    their own. The Drone stays up for the module."""
    run_id = uuid.uuid4().hex[:6]
    owner, viewer, outsider = (login(f"ca-{who}-{run_id}") for who in ("owner", "viewer", "outsider"))
    app = f"ca-{run_id}"
    assert owner.post("/apps", json={"name": app}).status_code == 201
    assert owner.put(f"/apps/{app}/members/ca-viewer-{run_id}", json={"role": "viewer"}).status_code == 200
    assert outsider.post("/apps", json={"name": f"ca-own-{run_id}"}).status_code == 201
    assert owner.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    made = owner.post(f"/apps/{app}/services/web/versions",
                      json={"name": "v1", "image": "nginx:1.25", "port": 80, "replicas": 1})
    assert made.status_code == 201, made.text
    for path, body in ((f"/apps/{app}/services/web/versions/v1/deploy", {"env": "test"}),
                       (f"/apps/{app}/services/web/route", {"version": "v1", "env": "test"})):
        sent = owner.post(path, json=body)
        assert sent.status_code == 202, sent.text
        finished(owner, sent.json()["record_id"])
    made = owner.post(f"/apps/{app}/ingresses", json={"name": "www", "host": f"www.{app}.example.com",
                                                      "routes": [{"path": "/", "service": "web"}]})
    assert made.status_code == 201, made.text
    sent = owner.post(f"/apps/{app}/ingresses/www/deploy", json={"env": "test"})
    assert sent.status_code == 202, sent.text
    finished(owner, sent.json()["record_id"])
    home = tmp_path_factory.mktemp("cli-attackers")
    with drone_linked(owner, app) as drone, FakeDrone("theirs", repo="evil/repo") as theirs:
        def mae(who, *args):
            return run(home, *args, url=stack.url, token=who.token)

        yield {"app": app, "owner": owner, "viewer": viewer, "outsider": outsider, "mae": mae,
               "drone": drone, "theirs": theirs, "info": clusters["test"], "run": run_id}


def finished(owner, record_id) -> None:
    record = wait_for(lambda: (lambda r: r if r.get("finished_at") else None)(
        owner.get(f"/records/{record_id}").json()), what=f"record {record_id}")
    assert record["status"] == "succeeded", record


def attacks(t) -> list[tuple[str, ...]]:
    """Every command that would change ``t``'s app, as its argument list."""
    app, theirs = t["app"], t["theirs"]
    return [
        ("restart", f"{app}/web/v1", "--env", "test", "--wait", "--timeout", "30"),
        ("scale", f"{app}/web/v1", "3", "--cluster", "test"),
        ("retire", f"{app}/web/v1", "--env", "test"),
        ("route", f"{app}/web", "--stop", "--env", "test"),
        ("deploy", f"{app}/web/v1", "--env", "prod"),
        ("ingresses", "create", f"{app}/evil", "--host", "evil.example.com", "--route", "/=web"),
        ("ingresses", "update", f"{app}/www", "--host", "evil.example.com"),
        ("ingresses", "deploy", f"{app}/www", "--env", "prod"),
        ("ingresses", "delete", f"{app}/www", "--wait"),
        ("ci", "link", f"{app}/web", "--server", theirs.base_url, "--repo", theirs.repo, "--token", "theirs",
         "--image", "evil/web", "--webhook-secret", "x" * 20),
        ("ci", "unlink", f"{app}/web"),
        ("ci", "build", f"{app}/web", "--ref", "main"),
    ]


def state(t) -> dict:
    """What an attack could change: the cluster's objects (kubectl) and the app (the API)."""
    app, owner, kubeconfig = t["app"], t["owner"], t["info"]["kubeconfig"]
    deployment = kubectl_json("-n", app, "get", "deployment", "web-v1", kubeconfig=kubeconfig, timeout=30)
    ingress = kubectl_json("-n", app, "get", "ingress", "www", kubeconfig=kubeconfig, timeout=30)
    service = kubectl_json("-n", app, "get", "service", "web", kubeconfig=kubeconfig, timeout=30)
    link = owner.get(f"/apps/{app}/services/web/ci").json()
    return {
        "deployment": {"generation": deployment["metadata"]["generation"], "spec": deployment["spec"]},
        "ingress": {"generation": ingress["metadata"]["generation"], "spec": ingress["spec"]},
        "service": service["spec"]["selector"],
        "records": [r["id"] for r in owner.get(f"/apps/{app}/records", params={"limit": 100}).json()["items"]],
        "ingresses": owner.get(f"/apps/{app}/ingresses").json()["items"],
        "routed": owner.get(f"/apps/{app}/services/web").json()["routed"],
        "ci": {k: link[k] for k in ("server", "repo", "image", "updated_at")},
        "drone_calls": len(t["drone"].received),
    }


def refused(result, status: int, message: str) -> None:
    """Exit 1, the API's words and its status on stderr, no traceback, an empty stdout."""
    said = " ".join(result.stderr.split())
    assert result.returncode == EXIT_ERROR, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == "", result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    assert said.startswith("Error:") and f"HTTP {status}" in said, said
    assert message in said, (message, said)


@pytest.mark.parametrize("who", ["outsider", "viewer"])
def test_commands_on_someone_elses_app_are_refused_and_change_nothing(target, who):
    t, app = target, target["app"]
    before = state(t)
    attacker = t[who]
    for args in attacks(t):
        for output in ((), ("-o", "json"), ("-o", "yaml")):
            result = t["mae"](attacker, *args, *output)
            if who == "outsider":
                # not a member: the app does not exist for them, in the API's words
                refused(result, 404, f"Application '{app}' was not found.")
                assert "not_found" in result.stderr
            else:
                refused(result, 403, f"Your role in '{app}' (viewer) does not allow this.")
                assert "forbidden" in result.stderr
    after = state(t)
    assert after == before
    assert t["theirs"].received == []  # their "CI server" was never called on the app's behalf


def test_an_outsider_cannot_tell_someone_elses_app_from_no_app(target):
    """The refusal of an existing app reads like that of an app that was never made."""
    t = target
    ghost = f"ca-ghost-{t['run']}"
    for args in attacks(t):
        real = t["mae"](t["outsider"], *args)
        none = t["mae"](t["outsider"], *(a.replace(t["app"], ghost) for a in args))
        assert real.returncode == none.returncode == EXIT_ERROR
        assert real.stderr.replace(t["app"], ghost) == none.stderr, (real.stderr, none.stderr)


def test_the_owner_still_can_and_the_viewer_still_reads(target):
    """The refusals are about who asks: the same app reads fine for its viewer, and its
    owner's own command goes through (so the attacks above were well-formed)."""
    t, app = target, target["app"]
    shown = t["mae"](t["viewer"], "ingresses", "show", f"{app}/www", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["host"] == f"www.{app}.example.com"
    link = t["mae"](t["viewer"], "ci", "show", f"{app}/web", "-o", "json")
    assert link.returncode == 0 and json.loads(link.stdout)["repo"] == t["drone"].repo, link.stderr
    scaled = t["mae"](t["owner"], "scale", f"{app}/web/v1", "1", "--cluster", "test", "--wait", "-o", "json")
    assert scaled.returncode == 0, scaled.stderr
    assert json.loads(scaled.stdout)["status"] == "succeeded"
