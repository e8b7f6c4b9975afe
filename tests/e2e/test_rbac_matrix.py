"""Every endpoint of "Auth and users" and "Applications and members" × every role × a foreign app.

Each cell asserts the exact status. A role's user is a member of the app under
test with that role; "outsider" is a logged-in user with no role anywhere;
"anonymous" sends no token. Every role user also calls the same endpoint on
a foreign application (where they have no role): it must not exist for them.
"""
import uuid

import pytest

from tests.e2e.conftest import Api

ROLES = ["viewer", "developer", "maintainer", "owner", "admin", "outsider", "anonymous"]
MEMBER_ROLES = ["viewer", "developer", "maintainer", "owner"]

# endpoint → (method, path, body, {role: status}); {app} is the app under test, {user} a member to change
APP_ENDPOINTS = {
    "apps.get": ("GET", "/apps/{app}", None,
                 dict(viewer=200, developer=200, maintainer=200, owner=200, admin=200, outsider=404, anonymous=401)),
    "apps.update": ("PATCH", "/apps/{app}", {"description": "new words"},
                    dict(viewer=403, developer=403, maintainer=200, owner=200, admin=200, outsider=404, anonymous=401)),
    "apps.delete": ("DELETE", "/apps/{app}", None,
                    dict(viewer=403, developer=403, maintainer=403, owner=204, admin=204, outsider=404, anonymous=401)),
    "apps.policy.get": ("GET", "/apps/{app}/policy", None,
                        dict(viewer=200, developer=200, maintainer=200, owner=200, admin=200, outsider=404,
                             anonymous=401)),
    "apps.policy.set": ("PUT", "/apps/{app}/policy", {"pod_security": "privileged"},
                        dict(viewer=403, developer=403, maintainer=403, owner=403, admin=200, outsider=404,
                             anonymous=401)),
    "members.list": ("GET", "/apps/{app}/members", None,
                     dict(viewer=200, developer=200, maintainer=200, owner=200, admin=200, outsider=404, anonymous=401)),
    "members.set": ("PUT", "/apps/{app}/members/{user}", {"role": "developer"},
                    dict(viewer=403, developer=403, maintainer=403, owner=200, admin=200, outsider=404, anonymous=401)),
    "members.remove": ("DELETE", "/apps/{app}/members/{user}", None,
                       dict(viewer=403, developer=403, maintainer=403, owner=204, admin=204, outsider=404, anonymous=401)),
}

USER_ENDPOINTS = {
    "providers": ("GET", "/auth/providers", None, dict.fromkeys(ROLES, 200)),
    "apps.create": ("POST", "/apps", "new-app", {**dict.fromkeys(ROLES, 201), "anonymous": 401}),
    "apps.list": ("GET", "/apps", None, {**dict.fromkeys(ROLES, 200), "anonymous": 401}),
    "me": ("GET", "/me", None, {**dict.fromkeys(ROLES, 200), "anonymous": 401}),
    "tokens.create": ("POST", "/tokens", {"name": "matrix"}, {**dict.fromkeys(ROLES, 201), "anonymous": 401}),
    "tokens.list": ("GET", "/tokens", None, {**dict.fromkeys(ROLES, 200), "anonymous": 401}),
    "tokens.revoke": ("DELETE", "/tokens/{token}", None, {**dict.fromkeys(ROLES, 204), "anonymous": 401}),
    "users.search": ("GET", "/users?q=rbac", None,
                     dict(viewer=200, developer=200, maintainer=200, owner=200, admin=200, outsider=403, anonymous=401)),
    "blacklist.block": ("PUT", "/admin/blacklist/{victim}", {},
                        dict(viewer=403, developer=403, maintainer=403, owner=403, admin=200, outsider=403, anonymous=401)),
    "blacklist.unblock": ("DELETE", "/admin/blacklist/{victim}", None,
                          dict(viewer=403, developer=403, maintainer=403, owner=403, admin=204, outsider=403, anonymous=401)),
    "audit": ("GET", "/admin/audit", None,
              dict(viewer=403, developer=403, maintainer=403, owner=403, admin=200, outsider=403, anonymous=401)),
}


@pytest.fixture(scope="module")
def people(login, admin, api):
    run = uuid.uuid4().hex[:4]
    users = {role: login(f"rbac-{role}-{run}") for role in MEMBER_ROLES + ["outsider"]}
    users["admin"] = admin
    users["anonymous"] = api
    users["victim"] = login(f"rbac-victim-{run}")
    # an outsider who never creates an app (the apps.create cell makes "outsider" an owner)
    users["lonely"] = login(f"rbac-lonely-{run}")
    users["run"] = run
    return users


def make_app(people, prefix="m") -> str:
    """A fresh app where each member role's user has that role, and a spare member to change."""
    owner = people["owner"]
    app = f"{prefix}-{uuid.uuid4().hex[:8]}"
    assert owner.post("/apps", json={"name": app}).status_code == 201
    run = people["run"]
    for role in ("viewer", "developer", "maintainer"):
        assert owner.put(f"/apps/{app}/members/rbac-{role}-{run}", json={"role": role}).status_code == 200
    assert owner.put(f"/apps/{app}/members/rbac-victim-{run}", json={"role": "viewer"}).status_code == 200
    return app


def call(client: Api, method, path, body):
    return client.request(method, path, json=body) if body is not None else client.request(method, path)


@pytest.mark.parametrize("endpoint", list(APP_ENDPOINTS))
def test_app_endpoints_by_role(people, endpoint):
    method, path, body, expected = APP_ENDPOINTS[endpoint]
    destructive = method in ("DELETE", "PUT", "PATCH")
    shared_app = None if destructive else make_app(people)
    seen = {}
    for role in ROLES:
        app = make_app(people) if destructive else shared_app
        url = path.format(app=app, user=f"rbac-victim-{people['run']}")
        resp = call(people[role], method, url, body)
        seen[role] = resp.status_code
        if resp.status_code == 404:
            # the same answer as for an app that does not exist at all
            assert resp.json()["error"]["message"] == f"Application {app!r} was not found."
    assert seen == expected


@pytest.mark.parametrize("endpoint", list(APP_ENDPOINTS))
def test_app_endpoints_on_a_foreign_application_do_not_exist(people, login, endpoint):
    method, path, body, _ = APP_ENDPOINTS[endpoint]
    stranger = login(f"rbac-stranger-{people['run']}")
    for role in MEMBER_ROLES:
        foreign = f"f-{uuid.uuid4().hex[:8]}"
        assert stranger.post("/apps", json={"name": foreign}).status_code == 201
        url = path.format(app=foreign, user=f"rbac-stranger-{people['run']}")
        resp = call(people[role], method, url, body)
        assert resp.status_code == 404, (role, resp.status_code)
        missing = call(people[role], method, path.format(app="no-such-app-" + people["run"], user="x"), body)
        assert missing.status_code == 404 and missing.json()["error"] == {
            **resp.json()["error"], "message": resp.json()["error"]["message"].replace(foreign, "no-such-app-" + people["run"]),
            "details": {"app": "no-such-app-" + people["run"]}}


@pytest.mark.parametrize("endpoint", list(USER_ENDPOINTS))
def test_user_and_admin_endpoints_by_role(people, endpoint):
    method, path, body, expected = USER_ENDPOINTS[endpoint]
    make_app(people)  # so that the member roles are members of something
    seen = {}
    for role in ROLES:
        client = people["lonely"] if (role, endpoint) == ("outsider", "users.search") else people[role]
        url = path
        if "{token}" in path:
            token_id = None
            if client.token:
                token_id = client.post("/tokens", json={"name": "to-revoke"}).json()["id"]
            url = path.format(token=token_id or 1)
        if "{victim}" in path:
            url = path.format(victim=f"rbac-victim-{people['run']}")
        payload = {"name": f"n-{uuid.uuid4().hex[:8]}"} if body == "new-app" else body
        resp = call(client, method, url, payload)
        seen[role] = resp.status_code
    assert seen == expected


def test_membership_changes_take_effect_at_once_despite_the_rbac_cache(people):
    app = make_app(people)
    run = people["run"]
    dev = people["developer"]
    assert dev.patch(f"/apps/{app}", json={"description": "x"}).status_code == 403
    assert people["owner"].put(f"/apps/{app}/members/rbac-developer-{run}",
                               json={"role": "maintainer"}).status_code == 200
    assert dev.patch(f"/apps/{app}", json={"description": "x"}).status_code == 200
    assert people["owner"].delete(f"/apps/{app}/members/rbac-developer-{run}").status_code == 204
    assert dev.get(f"/apps/{app}").status_code == 404


def test_the_last_owner_cannot_be_removed_or_demoted(people):
    app = make_app(people)
    owner_name = f"rbac-owner-{people['run']}"
    owner = people["owner"]
    resp = owner.delete(f"/apps/{app}/members/{owner_name}")
    assert resp.status_code == 409 and "last owner" in resp.json()["error"]["message"]
    assert owner.put(f"/apps/{app}/members/{owner_name}", json={"role": "viewer"}).status_code == 409
    assert owner.put(f"/apps/{app}/members/rbac-maintainer-{people['run']}", json={"role": "owner"}).status_code == 200
    assert owner.delete(f"/apps/{app}/members/{owner_name}").status_code == 204


def test_listing_shows_only_the_callers_apps_with_their_role(people):
    app = make_app(people, "list")
    mine = {a["name"]: a["role"] for a in people["developer"].get("/apps", params={"limit": 200}).json()["items"]}
    assert mine[app] == "developer"
    theirs = [a["name"] for a in people["outsider"].get("/apps", params={"limit": 200}).json()["items"]]
    assert app not in theirs
    assert people["viewer"].get(f"/apps/{app}").json()["role"] == "viewer"


@pytest.mark.parametrize("body,status", [
    ({"name": "Bad_Name"}, 422), ({"name": "a" * 64}, 422), ({"name": ""}, 422), ({}, 422),
    ({"name": "-x"}, 422), ({"name": 5}, 422), (["name"], 400), ({"name": "ok-app", "display_name": 7}, 422),
])
def test_application_input_is_validated(people, body, status):
    resp = people["owner"].post("/apps", json=body)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["message"]


def test_duplicate_application_is_409_and_bad_role_is_422(people):
    app = make_app(people)
    assert people["owner"].post("/apps", json={"name": app}).status_code == 409
    bad = people["owner"].put(f"/apps/{app}/members/rbac-viewer-{people['run']}", json={"role": "god"})
    assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "role"
    assert people["owner"].put(f"/apps/{app}/members/no-such-user", json={"role": "viewer"}).status_code == 404
