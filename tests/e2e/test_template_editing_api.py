"""Issue 22: an application's templates previewed, changed and deleted through the API, by
role. Who may add templates to the app (maintainers, owners, admins) may preview, change
and delete them; a viewer or developer is refused (403); whoever has no role in the app —
the owner of another app included — finds nothing there (404), and cannot reach one app's
template through another.
"""
from __future__ import annotations

import json
import uuid

import pytest

from services.deploy.domain import templates
from tests.waiting import waiter

BUILTIN = templates.BUILTINS["default-version"]
HOSTILE = BUILTIN["body"].replace("          image: {{ image | tojson }}\n",
                                  "          image: {{ image | tojson }}\n          securityContext: {privileged: true}\n", 1)
PASSWORD = "s3cret-" + uuid.uuid4().hex[:10]
WITH_SECRET = BUILTIN["body"] + ("\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: '{{ name }}-db'}\n"
                                 "stringData: {password: {{ values.password | tojson }}}\n")
SECRET_FIELDS = BUILTIN["fields"] + [{"name": "password", "type": "string", "default": "sample"}]
GOOD = {"kind": "version", "body": BUILTIN["body"], "fields": BUILTIN["fields"]}

wait_for = waiter(timeout=30, interval=0.3)


@pytest.fixture(scope="module")
def team(login):
    run = uuid.uuid4().hex[:6]
    people = {role: login(f"tple-{role}-{run}") for role in ("owner", "maintainer", "developer", "viewer", "stranger")}
    app, other = f"tple-{run}", f"tple-other-{run}"
    assert people["owner"].post("/apps", json={"name": app}).status_code == 201
    for role in ("maintainer", "developer", "viewer"):
        assert people["owner"].put(f"/apps/{app}/members/tple-{role}-{run}", json={"role": role}).status_code == 200
    # the stranger owns an app of their own, with a template of the same name as the team's
    assert people["stranger"].post("/apps", json={"name": other}).status_code == 201
    assert people["stranger"].post(f"/apps/{other}/templates", json={"name": "shared", **GOOD}).status_code == 201
    assert people["owner"].post(f"/apps/{app}/templates", json={"name": "shared", **GOOD}).status_code == 201
    return people, app, other


def test_a_preview_renders_what_a_save_would_and_hides_secret_values(team):
    people, app, _ = team
    resp = people["maintainer"].post(f"/apps/{app}/templates/preview",
                                     json={"kind": "version", "body": WITH_SECRET, "fields": SECRET_FIELDS,
                                           "values": {"password": PASSWORD, "service_port": 8081}})
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert PASSWORD not in json.dumps(answer["manifests"])
    kinds = {m["kind"]: m for m in answer["manifests"]}
    assert set(kinds) == {"Deployment", "Service", "Secret"}
    assert kinds["Secret"]["data"] == {"password": "<redacted>"}
    assert kinds["Service"]["spec"]["ports"][0]["port"] == 8081
    assert kinds["Deployment"]["metadata"]["namespace"] == app
    # the values the template saw: the fields' defaults, the caller's own over them
    assert answer["values"] == {"progress_deadline_seconds": 600, "service_port": 8081, "password": PASSWORD}
    names = [t["name"] for t in people["owner"].get("/templates").json()["items"] if t.get("app") == app]
    assert names == ["shared"]  # nothing stored


def test_a_preview_refuses_as_a_save_refuses(team):
    people, app, _ = team
    broken = people["owner"].post(f"/apps/{app}/templates/preview", json={"kind": "version", "body": "a: {{ b"})
    assert broken.status_code == 422
    assert broken.json()["error"]["code"] == "invalid"
    assert "not valid jinja2 (line 1)" in broken.json()["error"]["message"]
    previewed = people["owner"].post(f"/apps/{app}/templates/preview",
                                     json={"kind": "version", "body": HOSTILE, "fields": BUILTIN["fields"]})
    saved = people["owner"].post(f"/apps/{app}/templates", json={"name": "root", "kind": "version", "body": HOSTILE,
                                                                 "fields": BUILTIN["fields"]})
    assert previewed.status_code == saved.status_code == 422
    assert previewed.json()["error"] == saved.json()["error"]
    error = previewed.json()["error"]
    assert error["code"] == "policy_violation"
    assert {k: error["details"][k] for k in ("rule", "object", "path")} == {
        "rule": "privileged", "object": "Deployment/sample-v1",
        "path": "spec.template.spec.containers[0].securityContext.privileged"}
    unknown = people["owner"].post(f"/apps/{app}/templates/preview", json={**GOOD, "kind": "cronjob"})
    assert unknown.status_code == 422


@pytest.mark.parametrize("who, status", [("viewer", 403), ("developer", 403), ("stranger", 404),
                                         ("anonymous", 401)])
def test_who_may_not_add_templates_may_not_preview_change_or_delete_them(team, api, who, status):
    people, app, _ = team
    caller = api if who == "anonymous" else people[who]
    assert caller.post(f"/apps/{app}/templates/preview", json=GOOD).status_code == status
    assert caller.put(f"/apps/{app}/templates/shared", json=GOOD).status_code == status
    assert caller.delete(f"/apps/{app}/templates/shared").status_code == status
    body = [t["body"] for t in people["owner"].get("/templates").json()["items"]
            if t.get("app") == app and t["name"] == "shared"]
    assert body == [BUILTIN["body"]]


def test_another_apps_owner_reaches_only_their_own_template_of_the_same_name(team):
    people, app, other = team
    stranger = people["stranger"]
    changed = stranger.put(f"/apps/{other}/templates/shared", json={**GOOD, "body": BUILTIN["body"] + "# theirs\n"})
    assert changed.status_code == 200, changed.text
    assert stranger.delete(f"/apps/{other}/templates/shared").status_code == 204
    ours = [t for t in people["owner"].get("/templates").json()["items"] if t.get("app") == app]
    assert [(t["name"], t["body"]) for t in ours] == [("shared", BUILTIN["body"])]


def test_a_maintainer_changes_and_deletes_a_template_and_both_are_audited(team, admin):
    people, app, _ = team
    maintainer, owner = people["maintainer"], people["owner"]
    assert maintainer.post(f"/apps/{app}/templates", json={"name": "mine", **GOOD}).status_code == 201
    changed = maintainer.put(f"/apps/{app}/templates/mine",
                             json={"kind": "version", "body": WITH_SECRET, "fields": SECRET_FIELDS})
    assert changed.status_code == 200, changed.text
    assert changed.json()["body"] == WITH_SECRET and changed.json()["fields"][-1]["name"] == "password"
    refused = maintainer.put(f"/apps/{app}/templates/mine", json={"kind": "version", "body": HOSTILE,
                                                                  "fields": BUILTIN["fields"]})
    assert refused.status_code == 422 and refused.json()["error"]["details"]["rule"] == "privileged"
    assert maintainer.put(f"/apps/{app}/templates/nothing", json=GOOD).status_code == 404
    assert maintainer.put(f"/apps/{app}/templates/default-version", json=GOOD).status_code == 422

    assert owner.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    assert owner.post(f"/apps/{app}/services/web/versions", json={
        "name": "v1", "image": "nginx:1.27", "port": 80, "template": "mine"}).status_code == 201
    in_use = maintainer.delete(f"/apps/{app}/templates/mine")
    assert in_use.status_code == 409 and "version web/v1" in in_use.json()["error"]["message"]
    assert owner.patch(f"/apps/{app}/services/web/versions/v1", json={"template": None}).status_code == 200
    assert maintainer.delete(f"/apps/{app}/templates/mine").status_code == 204
    assert "mine" not in [t["name"] for t in owner.get("/templates").json()["items"] if t.get("app") == app]

    target = f"app:{app}/template:mine"
    for action, details in (("template_updated", {"kind": "version", "changed": ["body", "fields"]}),
                            ("template_deleted", {"kind": "version"})):
        entries = wait_for(lambda: [e for e in admin.get("/admin/audit", params={"action": action, "limit": 200})
                                    .json()["items"] if e["target"] == target], what=f"the {action} entry")
        assert [(e["actor"], e["details"]) for e in entries] == [(f"tple-maintainer-{app[len('tple-'):]}", details)]
