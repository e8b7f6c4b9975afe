"""Login over OAuth2 and the attacks on it, tokens, the blacklist and the audit log — over HTTP."""
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import text

from localauth.server import login_url
from shared.keys import Keys
from tests.e2e.conftest import Api, oauth_login


def start_login(stack):
    start = requests.get(stack.url + "/api/v1/auth/login/local", allow_redirects=False, timeout=10)
    assert start.status_code == 302
    location = start.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    return location, query


def callback(stack, params, accept="application/json"):
    return requests.get(stack.url + "/api/v1/auth/callback/local", params=params, timeout=10,
                        allow_redirects=False, headers={"Accept": accept})


def provider_code(location, username):
    answer = requests.get(login_url(location, username), allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]


def test_providers_are_listed_without_login(api):
    resp = api.get("/auth/providers")
    assert resp.status_code == 200
    assert {"name": "local", "display_name": "Local login (this machine)"} in resp.json()["items"]


def test_login_redirect_carries_state_and_pkce(stack):
    location, query = start_login(stack)
    assert query["response_type"] == ["code"]
    assert query["client_id"] == ["mae"]
    assert len(query["state"][0]) >= 20
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43


def test_full_login_creates_the_user_then_updates_them(stack):
    name = "carol-" + uuid.uuid4().hex[:5]
    first = oauth_login(stack, name)
    assert first["token"].startswith("mae_s_")
    assert first["user"]["username"] == name and first["user"]["is_admin"] is False
    me = Api(stack.url, first["token"]).get("/me")
    assert me.status_code == 200 and me.json()["username"] == name
    second = oauth_login(stack, name)
    assert second["user"]["id"] == first["user"]["id"]  # the same person, not a new user
    assert second["token"] != first["token"]


def test_browser_callback_redirects_to_the_console_with_the_token_in_the_fragment(stack):
    location, query = start_login(stack)
    code = provider_code(location, "dora")
    resp = callback(stack, {"code": code, "state": query["state"][0]}, accept="text/html")
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/#/login?token=mae_s_")


@pytest.mark.parametrize("params", [{}, {"code": "abc"}, {"state": "x"}])
def test_callback_without_code_or_state_is_400(stack, params):
    resp = callback(stack, params)
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "bad_request"


def test_forged_state_is_refused(stack):
    location, _ = start_login(stack)
    code = provider_code(location, "eve")
    resp = callback(stack, {"code": code, "state": "forged-" + uuid.uuid4().hex})
    assert resp.status_code == 400
    assert "start the login again" in resp.json()["error"]["message"]


def test_reused_state_is_refused(stack):
    location, query = start_login(stack)
    code = provider_code(location, "frank")
    assert callback(stack, {"code": code, "state": query["state"][0]}).status_code == 200
    replay = callback(stack, {"code": code, "state": query["state"][0]})
    assert replay.status_code == 400


def test_wrong_pkce_verifier_is_refused_by_the_provider(stack, redis_client):
    location, query = start_login(stack)
    state = query["state"][0]
    # An attacker who swapped in their own verifier (or a code minted for another
    # challenge) cannot complete the exchange.
    keys = Keys(stack.env["REDIS_PREFIX"])
    assert redis_client.hset(keys.oauth_state(state), "code_verifier", "x" * 43) == 0
    code = provider_code(location, "gina")
    resp = callback(stack, {"code": code, "state": state})
    assert resp.status_code == 400
    assert "refused the code" in resp.json()["error"]["message"]


def test_code_issued_to_another_client_is_refused(stack):
    location, query = start_login(stack)
    foreign = requests.get(stack.localauth_url + "/authorize", allow_redirects=False, timeout=10, params={
        "response_type": "code", "client_id": "other-app", "redirect_uri": "http://127.0.0.1:9/callback",
        "state": "s", "code_challenge": query["code_challenge"][0], "code_challenge_method": "S256",
        "username": "mallory"})
    assert foreign.status_code == 302
    foreign_code = parse_qs(urlsplit(foreign.headers["Location"]).query)["code"][0]
    resp = callback(stack, {"code": foreign_code, "state": query["state"][0]})
    assert resp.status_code == 400


def test_requests_without_or_with_a_bad_token_are_401(api, stack):
    assert api.get("/me").status_code == 401
    for header in ("Bearer ", "Bearer not-a-token", "Basic abc", "Bearer mae_p_" + "x" * 43):
        resp = requests.get(stack.url + "/api/v1/me", headers={"Authorization": header}, timeout=10)
        assert resp.status_code == 401, header
        assert resp.json()["error"]["code"] == "unauthorized"


def test_expired_session_is_401_with_a_reason(stack, db_engine):
    session = oauth_login(stack, "hank")
    with db_engine.begin() as conn:
        conn.execute(text("UPDATE auth_tokens SET expires_at = UTC_TIMESTAMP() - INTERVAL 1 SECOND "
                          "WHERE prefix = :p"), {"p": session["token"][:10]})
    resp = Api(stack.url, session["token"]).get("/me")
    assert resp.status_code == 401
    assert "expired" in resp.json()["error"]["message"]


def test_personal_tokens_are_shown_once_listed_without_secret_and_revocable(login, stack):
    ivy = login("ivy")
    created = ivy.post("/tokens", json={"name": "ci", "expires_in_days": 30})
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith("mae_p_")
    pat = Api(stack.url, token)
    assert pat.get("/me").json()["username"] == "ivy"  # now cached by the gateway
    listed = ivy.get("/tokens").json()["items"]
    assert [t["name"] for t in listed] == ["ci"]
    assert all("token" not in t and token not in str(t) for t in listed)
    assert ivy.delete(f"/tokens/{created.json()['id']}").status_code == 204
    revoked = pat.get("/me")
    assert revoked.status_code == 401  # at once, despite the cache
    assert ivy.delete(f"/tokens/{created.json()['id']}").status_code == 404
    assert ivy.get("/tokens").json()["items"] == []


@pytest.mark.parametrize("body,field", [({}, "name"), ({"name": "x", "expires_in_days": -1}, "expires_in_days"),
                                        ({"name": "x", "expires_in_days": "7"}, "expires_in_days"),
                                        ({"name": "x", "scope": "admin"}, "scope")])
def test_bad_token_requests_are_422_naming_the_field(login, body, field):
    resp = login("ivy").post("/tokens", json=body)
    assert resp.status_code == 422
    assert resp.json()["error"]["details"]["field"] == field


def test_malformed_json_is_400(login):
    resp = login("ivy").post("/tokens", data="{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert "not valid JSON" in resp.json()["error"]["message"]


def test_blocking_a_user_stops_all_their_tokens_within_a_second(admin, login, stack):
    jack = login("jack", fresh=True)
    pat = Api(stack.url, jack.post("/tokens", json={"name": "laptop"}).json()["token"])
    assert jack.get("/me").status_code == 200 and pat.get("/me").status_code == 200
    assert admin.put("/admin/blacklist/jack", json={"reason": "left the team"}).status_code == 200
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and (jack.get("/me").status_code != 401 or pat.get("/me").status_code != 401):
        time.sleep(0.05)
    assert jack.get("/me").status_code == 401
    assert pat.get("/me").json()["error"]["message"] == "Your account is blocked."
    assert admin.delete("/admin/blacklist/jack").status_code == 204
    assert pat.get("/me").status_code == 200


def test_blacklist_holds_after_the_redis_mirror_is_lost(admin, login, stack, redis_client):
    kim = login("kim", fresh=True)
    assert admin.put("/admin/blacklist/kim").status_code == 200
    keys = Keys(stack.env["REDIS_PREFIX"])
    redis_client.delete(keys.blacklist, keys.blacklist_loaded)  # as after a Redis restart
    assert kim.get("/me").status_code == 401  # the gateway asks the auth service instead
    admin.delete("/admin/blacklist/kim")


def test_only_admins_block_and_read_the_audit_log(login, admin):
    leo = login("leo")
    assert leo.put("/admin/blacklist/ivy").status_code == 403
    assert leo.get("/admin/audit").status_code == 403
    assert admin.put("/admin/blacklist/nobody-" + uuid.uuid4().hex[:4]).status_code == 404


def test_audit_log_records_security_actions_with_actor_and_source(admin, login, stack):
    mia = login("mia", fresh=True)
    created = mia.post("/tokens", json={"name": "audit-me"}).json()
    mia.delete(f"/tokens/{created['id']}")
    callback(stack, {"code": "x", "state": "forged"})
    app = "audit-" + uuid.uuid4().hex[:6]
    assert mia.post("/apps", json={"name": app}).status_code == 201
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        entries = admin.get("/admin/audit", params={"actor": "mia"}).json()["items"]
        if any(e["action"] == "app_created" for e in entries):
            break
        time.sleep(0.1)
    actions = [e["action"] for e in entries]
    for action in ("login", "token_created", "token_revoked", "app_created"):
        assert action in actions, actions
    assert all(e["source_ip"] == "127.0.0.1" for e in entries)
    failed = admin.get("/admin/audit", params={"action": "login_failed"}).json()["items"]
    assert failed and failed[0]["target"] == "provider:local"
    assert admin.get("/admin/audit", params={"since": "yesterday"}).status_code == 422


def test_user_search_is_for_admins_and_members(login, admin):
    outsider = login("nina-" + uuid.uuid4().hex[:4])
    assert outsider.get("/users", params={"q": "ivy"}).status_code == 403
    owner = login("oscar")
    owner.post("/apps", json={"name": "search-" + uuid.uuid4().hex[:6]})
    found = owner.get("/users", params={"q": "ivy"}).json()["items"]
    assert [u["username"] for u in found] == ["ivy"]
    # members learn names, not email addresses, and cannot search by them
    assert set(found[0]) == {"id", "username", "display_name"}
    assert owner.get("/users", params={"q": "example.test"}).json()["items"] == []
    assert admin.get("/users", params={"limit": 2}).json()["next_cursor"]
    [by_admin] = admin.get("/users", params={"q": "ivy@example.test"}).json()["items"]
    assert by_admin["email"] == "ivy@example.test"


def test_every_answer_says_nosniff_and_hsts_over_https(stack, api):
    import requests

    for resp in (api.get("/apps"), api.get("/no-such-thing"), requests.get(stack.url + "/healthz", timeout=10),
                 requests.get(stack.url + "/", timeout=10)):
        assert resp.headers["X-Content-Type-Options"] == "nosniff", resp.url
        assert "Strict-Transport-Security" not in resp.headers  # plain HTTP: HSTS would mean nothing
    behind_tls = requests.get(stack.url + "/healthz", headers={"X-Forwarded-Proto": "https"}, timeout=10)
    assert behind_tls.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_inventory_and_template_changes_are_audited_with_actor_and_source(admin, login):
    me = admin.get("/me").json()["username"]
    server = admin.post("/servers", json={"name": "audit-" + uuid.uuid4().hex[:4], "ip": "10.0.0.9"}).json()
    assert admin.patch(f"/servers/{server['id']}", json={"owner": "ops"}).status_code == 200
    assert admin.delete(f"/servers/{server['id']}").status_code == 204
    account = admin.post("/cloud-accounts", json={"name": "audit-" + uuid.uuid4().hex[:4], "provider": "aliyun",
                                                  "access_key_id": "LTAI-audit", "access_key_secret": "s3cret-audit",
                                                  "regions": ["cn-hangzhou"]}).json()
    owner = login("audit-owner-" + uuid.uuid4().hex[:4])
    app = "audit-t-" + uuid.uuid4().hex[:6]
    assert owner.post("/apps", json={"name": app}).status_code == 201
    body = open("services/deploy/templates/version.yaml.j2").read()
    assert owner.post(f"/apps/{app}/templates", json={
        "name": "audited", "kind": "version", "body": body,
        "fields": [{"name": "progress_deadline_seconds", "type": "integer", "default": 60},
                   {"name": "service_port", "type": "integer", "default": 80}]}).status_code == 201
    wanted = {("server_created", f"server:{server['id']}", me), ("server_updated", f"server:{server['id']}", me),
              ("server_deleted", f"server:{server['id']}", me),
              ("cloud_account_created", f"cloud_account:{account['id']}", me),
              ("template_created", f"app:{app}/template:audited", owner.get("/me").json()["username"])}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        entries = admin.get("/admin/audit", params={"limit": 200}).json()["items"]
        seen = {(e["action"], e["target"], e["actor"]) for e in entries}
        if wanted <= seen:
            break
        time.sleep(0.2)
    assert wanted <= seen, wanted - seen
    mine = [e for e in entries if (e["action"], e["target"], e["actor"]) in wanted]
    assert all(e["source_ip"] == "127.0.0.1" for e in mine)
    assert "s3cret-audit" not in str(entries)
