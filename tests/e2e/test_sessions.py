"""Sessions and tokens as their holder sees them: listed, ended, scoped, expiring — and
the race where a check in flight would bring a revoked token back."""
from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta

import requests

from gateway import auth as gateway_auth
from shared.keys import Keys
from shared.redis import make_client
from tests.e2e.conftest import Api


def _login(stack, username, device):
    """An OAuth login from a browser that says it is ``device``."""
    from localauth.server import login_url

    start = requests.get(stack.url + "/api/v1/auth/login/local", allow_redirects=False, timeout=10)
    at_provider = requests.get(login_url(start.headers["Location"], username), allow_redirects=False, timeout=10)
    callback = requests.get(at_provider.headers["Location"], timeout=10,
                            headers={"Accept": "application/json", "User-Agent": device})
    assert callback.status_code == 200, callback.text
    return Api(stack.url, callback.json()["token"])


def _parse(value):
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _gone(api, within=1.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if api.get("/me").status_code == 401:
            return True
        time.sleep(0.05)
    return api.get("/me").status_code == 401


def test_sessions_are_listed_with_device_and_one_can_be_ended(stack, admin):
    name = "sess-" + uuid.uuid4().hex[:6]
    laptop = _login(stack, name, "Firefox on the laptop")
    phone = _login(stack, name, "Safari on the phone")
    assert phone.get("/me").status_code == 200  # used (and cached by the gateway) before it ends
    listed = laptop.get("/sessions")
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert {i["device"] for i in items} == {"Firefox on the laptop", "Safari on the phone"}
    current = [i for i in items if i["current"]]
    assert len(current) == 1 and current[0]["device"] == "Firefox on the laptop"
    assert all(i["created_at"] and i["expires_at"] for i in items)
    assert all("token" not in i for i in items)
    other = next(i for i in items if not i["current"])
    assert laptop.delete(f"/sessions/{other['id']}").status_code == 204
    assert _gone(phone), "the ended session still works"
    assert laptop.get("/me").status_code == 200
    assert [i["device"] for i in laptop.get("/sessions").json()["items"]] == ["Firefox on the laptop"]
    audit_actions = {e["action"] for e in admin.get("/admin/audit", params={"actor": name}).json()["items"]}
    assert {"login", "session_ended"} <= audit_actions


def test_someone_elses_session_cannot_be_seen_or_ended(stack):
    victim = _login(stack, "sess-victim-" + uuid.uuid4().hex[:4], "victim browser")
    attacker = _login(stack, "sess-attacker-" + uuid.uuid4().hex[:4], "attacker browser")
    victim_session = victim.get("/sessions").json()["items"][0]["id"]
    assert all(i["device"] != "victim browser" for i in attacker.get("/sessions").json()["items"])
    refused = attacker.delete(f"/sessions/{victim_session}")
    assert refused.status_code == 404
    assert victim.get("/me").status_code == 200
    # A personal token's id is not a session id either (it is ended with DELETE /tokens/{id}).
    pat = attacker.post("/tokens", json={"name": "x"}).json()
    assert attacker.delete(f"/sessions/{pat['id']}").status_code == 404


def test_ending_all_other_sessions_keeps_the_current_one(stack):
    name = "sess-all-" + uuid.uuid4().hex[:6]
    others = [_login(stack, name, f"device {i}") for i in range(3)]
    for api in others:
        assert api.get("/me").status_code == 200
    here = _login(stack, name, "here")
    assert here.delete("/sessions").status_code == 204
    assert all(_gone(api) for api in others)
    assert here.get("/me").status_code == 200
    assert [i["device"] for i in here.get("/sessions").json()["items"]] == ["here"]


def test_logout_ends_the_session_on_the_server(stack):
    api = _login(stack, "sess-out-" + uuid.uuid4().hex[:6], "browser")
    assert api.get("/me").status_code == 200
    copied = Api(stack.url, api.token)  # the token someone copied from the browser
    assert api.post("/auth/logout").status_code == 204
    assert _gone(copied)


def test_sessions_beyond_the_limit_end_oldest_first(stack):
    name = "sess-many-" + uuid.uuid4().hex[:6]
    first = _login(stack, name, "oldest")
    assert first.get("/me").status_code == 200
    latest = [_login(stack, name, f"browser {i}") for i in range(50)]  # MAX_SESSIONS in test.yaml
    assert _gone(first), "the 51st login left the oldest session alive"
    assert latest[0].get("/me").status_code == 200 and latest[-1].get("/me").status_code == 200
    assert len(latest[-1].get("/sessions", params={"limit": 100}).json()["items"]) == 50


def test_read_scope_token_may_look_but_not_change(login, stack):
    owner = login("scope-owner-" + uuid.uuid4().hex[:4])
    app = "scope-" + uuid.uuid4().hex[:6]
    assert owner.post("/apps", json={"name": app}).status_code == 201
    made = owner.post("/tokens", json={"name": "dashboard", "scope": "read"})
    assert made.status_code == 201, made.text
    assert made.json()["scope"] == "read"
    reader = Api(stack.url, made.json()["token"])
    assert reader.get(f"/apps/{app}").status_code == 200
    for method, path, body in [("POST", "/apps", {"name": app + "-x"}),
                               ("DELETE", f"/apps/{app}", None),
                               ("POST", "/tokens", {"name": "escalate", "scope": "write"}),
                               ("DELETE", "/sessions", None)]:
        refused = reader.request(method, path, json=body)
        assert refused.status_code == 403, (method, path, refused.text)
        assert "read-only" in refused.json()["error"]["message"]
    assert owner.get(f"/apps/{app}").status_code == 200
    assert owner.get(f"/apps/{app}-x").status_code == 404
    assert [t["scope"] for t in owner.get("/tokens").json()["items"] if t["name"] == "dashboard"] == ["read"]


def test_personal_tokens_expire_by_default_and_never_only_for_admins(login, admin):
    user = login("expiry-" + uuid.uuid4().hex[:4])
    made = user.post("/tokens", json={"name": "default"}).json()
    listed = next(t for t in user.get("/tokens").json()["items"] if t["id"] == made["id"])
    lifetime = _parse(made["expires_at"]) - _parse(listed["created_at"])
    assert timedelta(days=89, hours=23) < lifetime <= timedelta(days=90, minutes=1)
    forever = user.post("/tokens", json={"name": "forever", "expires_in_days": 0})
    assert forever.status_code == 403
    assert "administrator" in forever.json()["error"]["message"]
    admins = admin.post("/tokens", json={"name": "forever", "expires_in_days": 0})
    assert admins.status_code == 201 and admins.json()["expires_at"] is None
    assert admin.delete(f"/tokens/{admins.json()['id']}").status_code == 204


class _Request:
    method, remote_addr = "GET", "127.0.0.1"

    def __init__(self, token):
        self.headers = {"Authorization": f"Bearer {token}"}


def test_a_check_in_flight_cannot_bring_a_revoked_token_back(stack, login):
    """The gateway reads the token as valid, the owner revokes it, then the gateway caches
    what it read: the cache write meets the revocation's tombstone and stores nothing."""
    owner = login("race-" + uuid.uuid4().hex[:4])
    made = owner.post("/tokens", json={"name": "racy"}).json()
    redis = make_client(stack.env["REDIS_URL"])
    keys = Keys(stack.env["REDIS_PREFIX"])

    class Auth:  # the auth service, answering just before the revocation lands
        def verify_token(self, token):
            identity = {"user": owner.get("/me").json(), "token_id": made["id"], "kind": "personal",
                        "scope": "write", "expires_at": made["expires_at"]}
            assert owner.delete(f"/tokens/{made['id']}").status_code == 204  # lands meanwhile
            return identity

        def is_blocked(self, user_id):
            return False

    class Gateway:
        config = {"REDIS_PREFIX": stack.env["REDIS_PREFIX"]}
        auth = Auth()

    Gateway.redis = redis
    try:
        gateway_auth.authenticate(Gateway(), _Request(made["token"]))  # the check in flight
        from shared.tokens import token_hash

        assert redis.get(keys.token(token_hash(made["token"]))) is None
        assert Api(stack.url, made["token"]).get("/me").status_code == 401
    finally:
        redis.close()


def test_identity_cache_write_is_refused_only_for_revoked_tokens(stack):
    redis = make_client(stack.env["REDIS_URL"])
    keys = Keys(stack.env["REDIS_PREFIX"] + "-cachewrite")
    try:
        write = gateway_auth.cache_identity_script(redis)
        assert write(keys=[keys.token("a"), keys.token_revoked("a")], args=[json.dumps({"x": 1}), 30]) == 1
        redis.set(keys.token_revoked("b"), "1", ex=30)
        assert write(keys=[keys.token("b"), keys.token_revoked("b")], args=[json.dumps({"x": 1}), 30]) == 0
        assert redis.get(keys.token("a")) and redis.get(keys.token("b")) is None
    finally:
        redis.delete(keys.token("a"), keys.token_revoked("b"))
        redis.close()
