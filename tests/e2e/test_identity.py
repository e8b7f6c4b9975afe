"""Who is who: logins through an OpenID Provider that is not ours, names that pass for
``admin``, the bootstrap admin bound to a provider and subject, and tampered callbacks.

The provider is panva's oidc-provider (npm, OpenID Certified; tests/e2e/oidc_idp/,
installed by `make test`), started here on a free port; MAE knows it by its issuer alone
(provider ``sso`` in config/test.yaml). The login is driven with requests, no browser:
MAE's redirect → the provider's own login and consent forms → MAE's callback.
This module runs a stack of its own (database, vhost, Redis prefix, ports 5000-5499 +),
because it sets ``BOOTSTRAP_ADMIN``.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.e2e.conftest import Api, oauth_login, own_backends, running_stack

IDP_DIR = Path(__file__).parent / "oidc_idp"
BOSS_SUBJECT = "local-boss"  # at `sso`; the same string is localauth's subject for "boss" at `local`


class OpenIDProvider:
    """The node process and the accounts it knows (subject → claims)."""

    def __init__(self, port: int, accounts_file: Path):
        self.port, self.accounts_file, self.proc = port, accounts_file, None
        self.issuer = f"http://127.0.0.1:{port}"
        self.accounts: dict[str, dict] = {}
        accounts_file.write_text("{}")

    def start(self, client_id: str, secret: str, redirect_uri: str, log_path: Path) -> None:
        assert (IDP_DIR / "node_modules" / "oidc-provider").is_dir(), "run `make oidc-idp` (part of `make test`)"
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ["node", "idp.mjs", str(self.port), str(self.accounts_file), f"{client_id}:{secret}:{redirect_uri}"],
                cwd=IDP_DIR, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.issuer + "/.well-known/openid-configuration", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            assert self.proc.poll() is None, log_path.read_text()[-2000:]
            time.sleep(0.2)
        raise TimeoutError(f"the OpenID Provider did not start: {log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)

    def add(self, subject: str, **claims) -> None:
        self.accounts[subject] = claims
        tmp = self.accounts_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.accounts))
        tmp.replace(self.accounts_file)


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    from tests.conftest import free_port

    provider = OpenIDProvider(free_port(), tmp_path_factory.mktemp("idp") / "accounts.json")
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def db_url(infra):
    with own_backends(infra, "identity") as env:
        yield env


@pytest.fixture(scope="module")
def stack(db_url, idp, secret_key, tmp_path_factory):
    from tests.conftest import free_port

    run_dir = tmp_path_factory.mktemp("identity-stack")
    client_secret = secrets.token_urlsafe(24)
    env = {**db_url, "MAE_SECRET_KEY": secret_key,
           "OAUTH_SSO_ISSUER": idp.issuer, "OAUTH_SSO_CLIENT_ID": "mae-sso",
           "OAUTH_SSO_CLIENT_SECRET": client_secret, "OAUTH_SSO_NAME": "Test OpenID Provider",
           "MAE_BOOTSTRAP_ADMIN": f"sso:{BOSS_SUBJECT}"}
    with running_stack(run_dir, env, port_offset=free_port() % 500 + 5000, localauth_port=free_port()) as started:
        # MAE finds the provider by discovery at the first login, so it may start now that
        # MAE's address (its redirect URI) is known.
        idp.start("mae-sso", client_secret, f"{started.url}/api/v1/auth/callback/sso", run_dir / "idp.log")
        yield started


@pytest.fixture(scope="module")
def db(db_url):
    engine = create_engine(db_url["DB_URL"])
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def admin_api(stack):
    from scripts.stack import admin_token

    token, _ = admin_token(stack)
    return Api(stack.url, token)


def provider_callback(stack, idp, subject: str) -> str:
    """MAE's redirect → the provider's login form (as ``subject``) and consent → the URL
    the provider sends the browser back to (MAE's callback, with code, state and iss)."""
    browser = requests.Session()
    start = browser.get(stack.url + "/api/v1/auth/login/sso", allow_redirects=False, timeout=10)
    assert start.status_code == 302, start.text
    url = start.headers["Location"]
    assert url.startswith(idp.issuer + "/"), url
    for _ in range(12):
        if url.startswith(stack.url):
            return url
        resp = browser.get(url, allow_redirects=False, timeout=10)
        if resp.status_code == 200:  # one of the provider's forms
            prompt = re.search(r'name="prompt" value="(\w+)"', resp.text).group(1)
            action = re.search(r'<form[^>]*action="([^"]+)"', resp.text).group(1)
            form = {"prompt": prompt, "login": subject, "password": "any"} if prompt == "login" else {"prompt": prompt}
            resp = browser.post(idp.issuer + action if action.startswith("/") else action, data=form,
                                allow_redirects=False, timeout=10)
        assert resp.status_code in (302, 303), (resp.status_code, resp.text[:500])
        location = resp.headers["Location"]
        url = idp.issuer + location if location.startswith("/") else location
    raise AssertionError("the provider never sent the browser back to MAE")


def finish(url: str, **changes) -> requests.Response:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return requests.get(urlunsplit(parts._replace(query=urlencode(query))), timeout=15, allow_redirects=False,
                        headers={"Accept": "application/json"})


def sso_login(stack, idp, subject: str, **claims) -> dict:
    idp.add(subject, **claims)
    resp = finish(provider_callback(stack, idp, subject))
    assert resp.status_code == 200, resp.text
    return resp.json()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_the_provider_is_offered_and_the_login_carries_state_nonce_and_pkce(stack, idp):
    items = requests.get(stack.url + "/api/v1/auth/providers", timeout=10).json()["items"]
    assert {"name": "sso", "display_name": "Test OpenID Provider"} in items
    start = requests.get(stack.url + "/api/v1/auth/login/sso", allow_redirects=False, timeout=10)
    location = start.headers["Location"]
    discovered = requests.get(idp.issuer + "/.well-known/openid-configuration", timeout=10).json()
    assert location.startswith(discovered["authorization_endpoint"] + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["client_id"] == ["mae-sso"] and "openid" in query["scope"][0].split()
    assert len(query["state"][0]) >= 20 and len(query["nonce"][0]) >= 40
    assert query["code_challenge_method"] == ["S256"]


def test_login_through_the_openid_provider_end_to_end(stack, idp):
    name = unique("carol")
    subject = unique("sub-carol")
    first = sso_login(stack, idp, subject, preferred_username=name, email=f"{name}@example.test",
                      name="Carol Example")
    assert first["token"].startswith("mae_s_")
    assert first["user"]["username"] == name and first["user"]["is_admin"] is False
    assert first["user"]["display_name"] == "Carol Example"  # from userinfo: the ID token has only sub
    me = Api(stack.url, first["token"]).get("/me").json()
    assert me["username"] == name and me["email"] == f"{name}@example.test"
    again = sso_login(stack, idp, subject, preferred_username=name, name="Carol E.")
    assert again["user"]["id"] == first["user"]["id"] and again["user"]["display_name"] == "Carol E."


@pytest.mark.parametrize("claims", [
    {"preferred_username": "admin"}, {"preferred_username": "Admin"}, {"preferred_username": "ADMİN"},
    {"preferred_username": "Ａｄｍｉｎ"}, {"preferred_username": "ádmin"},
    {"email": "admin@evil.example.test"},                     # the name from the email's local part
    {"nickname": "ADMIN", "email": "x@evil.example.test"},
], ids=["admin", "Admin", "ADMİN", "fullwidth", "accent", "email", "nickname"])
def test_a_name_that_passes_for_admin_gets_a_plain_suffixed_account(stack, idp, claims):
    session = sso_login(stack, idp, unique("sub-mallory"), **claims)
    user = session["user"]
    assert user["is_admin"] is False
    assert re.fullmatch(r"admin-\d+", user["username"]), user["username"]
    mallory = Api(stack.url, session["token"])
    assert mallory.get("/admin/audit").status_code == 403
    assert mallory.get("/me").json()["is_admin"] is False


def test_admin_at_the_local_provider_is_not_the_admin_either(stack):
    user = oauth_login(stack, "admin")["user"]
    assert user["is_admin"] is False and re.fullmatch(r"admin-\d+", user["username"])


def test_the_bound_subject_is_the_bootstrap_admin(stack, idp, admin_api):
    bootstrap = admin_api.get("/me").json()
    assert bootstrap["username"] == "admin" and bootstrap["is_admin"] is True
    boss = sso_login(stack, idp, BOSS_SUBJECT, preferred_username="boss", email="boss@example.test")
    assert boss["user"]["is_admin"] is True
    assert boss["user"]["id"] == bootstrap["id"]  # the account the admin token reaches
    assert Api(stack.url, boss["token"]).get("/admin/audit").status_code == 200
    # Not the same name elsewhere, not the same subject at another provider, nor in another case.
    same_name = sso_login(stack, idp, unique("sub-boss"), preferred_username="boss")
    assert same_name["user"]["is_admin"] is False and same_name["user"]["id"] != bootstrap["id"]
    local_boss = oauth_login(stack, "boss")["user"]  # localauth's subject is also "local-boss"
    assert local_boss["is_admin"] is False and local_boss["id"] != bootstrap["id"]
    upper = sso_login(stack, idp, BOSS_SUBJECT.upper(), preferred_username="boss")
    assert upper["user"]["is_admin"] is False
    audit = admin_api.get("/admin/audit", params={"action": "login", "limit": 100}).json()["items"]
    assert any(e["details"].get("subject") == BOSS_SUBJECT and e["actor"] == "admin" for e in audit)


def test_two_identities_wanting_the_same_name_get_it_and_a_suffixed_one(stack, idp):
    first = sso_login(stack, idp, unique("sub-alice"), preferred_username="alice")["user"]
    second = oauth_login(stack, "alice")["user"]             # another provider
    third = sso_login(stack, idp, unique("sub-alice"), preferred_username="Alice")["user"]  # another subject
    assert [first["username"], second["username"], third["username"]] == ["alice", "alice-2", "alice-3"]
    assert len({first["id"], second["id"], third["id"]}) == 3
    assert oauth_login(stack, "alice")["user"]["username"] == "alice-2"  # and they keep them


def test_an_identity_attached_to_the_admin_by_the_old_rule_is_detached(stack, idp, db, admin_api):
    # Before identities decided, an IdP account named "admin" was attached to the admin.
    subject = unique("sub-old-takeover")
    with db.begin() as conn:
        admin_id = conn.execute(text("SELECT id FROM auth_users WHERE username = 'admin'")).scalar_one()
        conn.execute(text("INSERT INTO auth_identities (user_id, provider, subject, claimed_username, email, "
                          "created_at) VALUES (:u, 'sso', :s, 'admin', '', UTC_TIMESTAMP())"),
                     {"u": admin_id, "s": subject})
    session = sso_login(stack, idp, subject, preferred_username="admin")
    assert session["user"]["is_admin"] is False and session["user"]["id"] != admin_id
    detached = admin_api.get("/admin/audit", params={"action": "identity_detached"}).json()["items"]
    assert any(e["details"] == {"provider": "sso", "subject": subject} for e in detached)


def test_a_tampered_state_is_refused(stack, idp):
    idp.add("sub-tamper", preferred_username="tamper")
    url = provider_callback(stack, idp, "sub-tamper")
    forged = finish(url, state="forged-" + uuid.uuid4().hex)
    assert forged.status_code == 400 and "start the login again" in forged.json()["error"]["message"]
    # Another login's state with this login's code: the code belongs to another PKCE verifier and nonce.
    other = requests.get(stack.url + "/api/v1/auth/login/sso", allow_redirects=False, timeout=10)
    other_state = parse_qs(urlsplit(other.headers["Location"]).query)["state"][0]
    swapped = finish(url, state=other_state)
    assert swapped.status_code == 400 and "refused the code" in swapped.json()["error"]["message"]
    assert finish(url, state=other_state).status_code == 400  # and that state is spent
    assert finish(url).status_code == 200  # the rightful callback still completes, once


def test_a_replayed_callback_and_a_replayed_code_are_refused(stack, idp):
    idp.add("sub-replay", preferred_username="replay")
    url = provider_callback(stack, idp, "sub-replay")
    assert finish(url).status_code == 200
    replay = finish(url)
    assert replay.status_code == 400 and "already used" in replay.json()["error"]["message"]
    # The spent code with a fresh state: the provider refuses it (used, and another verifier).
    fresh = requests.get(stack.url + "/api/v1/auth/login/sso", allow_redirects=False, timeout=10)
    state = parse_qs(urlsplit(fresh.headers["Location"]).query)["state"][0]
    again = finish(url, state=state)
    assert again.status_code == 400 and "refused the code" in again.json()["error"]["message"]


def test_an_answer_claiming_another_issuer_is_refused(stack, idp):
    idp.add("sub-mixup", preferred_username="mixup")
    url = provider_callback(stack, idp, "sub-mixup")
    assert parse_qs(urlsplit(url).query)["iss"] == [idp.issuer]  # RFC 9207, sent by this provider
    resp = finish(url, iss="https://evil.example.test")
    assert resp.status_code == 400 and "not by sso's issuer" in resp.json()["error"]["message"]


def test_failed_logins_are_audited_with_the_reason(stack, idp, admin_api):
    idp.add("sub-audited", preferred_username="audited")
    finish(provider_callback(stack, idp, "sub-audited"), iss="https://evil.example.test")
    failed = admin_api.get("/admin/audit", params={"action": "login_failed"}).json()["items"]
    assert any(e["target"] == "provider:sso" and "issuer" in e["details"]["reason"] for e in failed)
