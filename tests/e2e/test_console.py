"""The web console in Debian's headless Chromium (Playwright, no browser download),
against the e2e stack: OAuth login in the browser, applications, members, servers,
language, and the deploy journey.

The browser side of each test is a scenario in ``console_scenarios.py``, run in a
process of its own (Playwright hangs under this process's eventlet); the API set-up
and the static-file checks stay here. ``make screenshots`` runs ``screenshots.py``.
"""
from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests

from scripts.stack import ROOT
from tests.e2e.console_scenarios import CHROMIUM
from tests.e2e.journey import ensure_test_cluster

def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def scenario(name: str, timeout: float = 240, **args) -> dict:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed; `make test` installs it (`make browser`)", pytrace=False)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-m", "tests.e2e.console_scenarios", name], input=json.dumps(args),
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    if proc.returncode != 0:
        pytest.fail(f"browser scenario {name} failed:\n{proc.stderr[-6000:]}", pytrace=False)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- static files --------------------------------------------------------------------

def raw_get(stack, path):
    url = urlparse(stack.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("GET", path)  # sent as is: no client-side dot-segment clean-up
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def test_console_files_are_served_with_types_and_caching_and_never_outside(stack):
    index = requests.get(stack.url + "/", timeout=10)
    assert index.status_code == 200 and index.headers["Content-Type"].startswith("text/html")
    assert index.headers["Cache-Control"] == "no-cache" and index.headers["ETag"]
    assert "script-src 'self'" in index.headers["Content-Security-Policy"]
    js = requests.get(stack.url + "/static/app.js", timeout=10)
    assert js.headers["Content-Type"].startswith("text/javascript")
    assert requests.get(stack.url + "/static/style.css", timeout=10).headers["Content-Type"].startswith("text/css")
    again = requests.get(stack.url + "/static/app.js", headers={"If-None-Match": js.headers["ETag"]}, timeout=10)
    assert again.status_code == 304
    for path in ("/static/../../etc/passwd", "/static/..%2f..%2fetc/passwd", "/static/%2e%2e/routes/console.py",
                 "/static/pages/../../service.py", "/static/nothing.js", "/static/"):
        assert raw_get(stack, path).status == 404, path
    doc = requests.get(stack.url + "/api/v1/openapi.json", timeout=10).json()
    assert "/" not in doc["paths"] and not any(p.startswith("/static") for p in doc["paths"])


# -- in the browser -------------------------------------------------------------------

def test_oauth_login_create_app_members_and_chinese(stack, login):
    login("web.bob")  # exists, so the owner can add him
    name = unique("web-app")
    scenario("login_apps_members_language", url=stack.url, user="web.alice", other="web.bob", app=name)
    alice = login("web.alice")
    assert alice.get(f"/apps/{name}").json()["display_name"] == "<b>Shop</b> & 商店"


def test_chinese_browser_gets_chinese_and_a_bad_token_is_refused(stack):
    scenario("chinese_browser_and_bad_token", url=stack.url)


def test_a_handed_over_token_is_refused_and_logout_ends_the_session(stack, login):
    attacker = login("web.mallory")
    result = scenario("login_csrf_and_logout", url=stack.url, user="web.csrf-victim",
                      foreign_token=attacker.token)
    assert result["after_logout"] == 401
    assert attacker.get("/me").status_code == 200  # the handed-over token was never used up


def test_servers_sorted_by_expiry_with_expiring_highlighted(stack, admin):
    today = datetime.now(timezone.utc)
    names = {"soon": unique("srv-soon"), "later": unique("srv-later"), "gone": unique("srv-gone")}
    for key, days in (("later", 120), ("soon", 10), ("gone", -3)):
        day = (today + timedelta(days=days)).strftime("%Y-%m-%d")
        assert admin.post("/servers", json={"name": names[key], "ip": "10.1.0.9", "expires_at": day}).status_code == 201
    scenario("servers_expiring", url=stack.url, token=admin.token, **names)


def test_deploy_journey_in_the_browser(request, stack, admin, login):
    cluster = ensure_test_cluster(request, stack, admin)
    gina = login("web.gina")
    app = unique("web-deploy")
    assert gina.post("/apps", json={"name": app}).status_code == 201
    scenario("deploy_journey", url=stack.url, token=gina.token, app=app, cluster=cluster)
    actions = [r["action"] for r in gina.get(f"/apps/{app}/records").json()["items"]]
    assert actions == ["route", "rollback", "deploy", "deploy"]
    assert gina.get(f"/apps/{app}/services/web").json()["routed"] == {cluster: "v1"}
