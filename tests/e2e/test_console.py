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


def scenario(name: str, timeout: float = 240, module: str = "tests.e2e.console_scenarios", **args) -> dict:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed; `make test` installs it (`make browser`)", pytrace=False)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-m", module, name], input=json.dumps(args),
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


def test_version_page_pods_logs_scale_restart_and_retire(stack, admin, login, clusters):
    """Issue 22: a version's own page, driven as a developer; what the page did is then
    checked with kubectl on the cluster and through the API."""
    from tests.kube import on_cluster
    from tests.waiting import waiter

    run = uuid.uuid4().hex[:4]
    names = {who: f"web-ver-{who}-{run}" for who in ("owner", "dev", "viewer")}
    owner, dev, viewer = (login(names[who]) for who in ("owner", "dev", "viewer"))
    app = unique("web-ver")
    assert owner.post("/apps", json={"name": app}).status_code == 201
    for who, role in (("dev", "developer"), ("viewer", "viewer")):
        assert owner.put(f"/apps/{app}/members/{names[who]}", json={"role": role}).status_code == 200
    assert owner.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    secret = uuid.uuid4().hex
    made = owner.post(f"/apps/{app}/services/web/versions", json={
        "name": "v1", "image": "nginx:1.27", "port": 80, "replicas": 1, "env": {"MODE": "shop"},
        "secret_env": {"TOKEN": secret}, "health_path": "/index.html"})
    assert made.status_code == 201, made.text
    sent = owner.post(f"/apps/{app}/services/web/versions/v1/deploy", json={"env": "test"})
    assert sent.status_code == 202, sent.text
    record_path = f"/records/{sent.json()['record_id']}"
    record = waiter(timeout=90.0, interval=0.3)(
        lambda: (lambda r: r if r.get("finished_at") else None)(owner.get(record_path).json()), what="the first deploy")
    assert record["status"] == "succeeded", record
    cluster = record["targets"][0]["cluster"]

    scenario("version_page", timeout=400, url=stack.url, token=dev.token, viewer_token=viewer.token, app=app,
             cluster=cluster, secret=secret)

    actions = [r["action"] for r in owner.get(f"/apps/{app}/records").json()["items"]]
    assert actions == ["retire", "restart", "scale", "deploy"], actions
    assert {r["created_by"] for r in owner.get(f"/apps/{app}/records").json()["items"][:3]} == {names["dev"]}
    gone = on_cluster(clusters[cluster], "-n", app, "get", "deployment", "web-v1", "--ignore-not-found", "-o", "name")
    assert gone.returncode == 0 and gone.stdout.strip() == "", gone.stdout + gone.stderr
    assert owner.get(f"/apps/{app}/services/web/versions/v1").status_code == 200  # the version itself stays


def _current_session(api_):
    return next(s["id"] for s in api_.get("/sessions").json()["items"] if s["current"])


def test_account_page_creates_and_revokes_a_token_and_ends_other_sessions(stack, login):
    """Issue 22: #/account, driven in the browser, checked through the API."""
    user = unique("web-acct")
    here, other = login(user), login(user, fresh=True)
    name = unique("tok")
    result = scenario("account_tokens_sessions", url=stack.url, token=here.token, token_name=name,
                      other_session=_current_session(other))
    assert result["works"] == 200 and result["write"] == 403  # a read-scoped token
    assert requests.get(stack.url + "/api/v1/me", headers={"Authorization": f"Bearer {result['secret']}"},
                        timeout=10).status_code == 401  # revoked in the browser
    assert name not in [t["name"] for t in here.get("/tokens").json()["items"]]
    assert other.get("/me").status_code == 401 and here.get("/me").status_code == 200


# -- issue 22: ingresses and CI pages ---------------------------------------------------

def _deployed_app(owner, prefix):
    from tests.waiting import waiter

    app = unique(prefix)
    assert owner.post("/apps", json={"name": app}).status_code == 201
    assert owner.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    made = owner.post(f"/apps/{app}/services/web/versions", json={"name": "v1", "image": "nginx:1.27", "port": 80})
    assert made.status_code == 201, made.text
    sent = owner.post(f"/apps/{app}/services/web/versions/v1/deploy", json={"env": "test"})
    assert sent.status_code == 202, sent.text
    record = waiter(timeout=90.0, interval=0.3)(lambda: (lambda r: r if r.get("finished_at") else None)(
        owner.get(f"/records/{sent.json()['record_id']}").json()), what="the first deploy")
    assert record["status"] == "succeeded", record
    return app


def test_ingress_page_makes_deploys_and_deletes_an_ingress_on_the_cluster(stack, login, clusters):
    from tests.kube import kubectl_json
    from tests.waiting import waiter

    owner = login(unique("web-ing"))
    app = _deployed_app(owner, "web-ing")
    hosts = {"host": f"{app}.example.com", "test_host": f"test.{app}.example.com", "prod_host": f"{app}.example.org"}
    kubeconfig = clusters["test"]["kubeconfig"]
    done = scenario("ingress_page_deploy", url=stack.url, token=owner.token, app=app, issuer="mae-test-ca", **hosts)
    record = owner.get(f"/records/{done['record']}").json()
    assert record["status"] == "succeeded" and record["ingress"] == "www", record
    live = kubectl_json("-n", app, "get", "ingress", "www", kubeconfig=kubeconfig, timeout=30)
    assert [r["host"] for r in live["spec"]["rules"]] == [hosts["test_host"]], live["spec"]
    assert live["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "mae-test-ca", live["metadata"]
    assert live["spec"]["tls"] == [{"hosts": [hosts["test_host"]], "secretName": "www-tls"}], live["spec"]
    stored = owner.get(f"/apps/{app}/ingresses/www").json()
    assert stored["hosts"] == {"test": hosts["test_host"], "prod": hosts["prod_host"]}, stored
    assert stored["routes"][0]["service"] == "web" and stored["routes"][0].get("version") is None, stored
    assert [c["name"] for c in stored["clusters"]] == ["test"], stored

    scenario("ingress_page_delete", url=stack.url, token=owner.token, app=app, cluster="test")
    assert owner.get(f"/apps/{app}/ingresses/www").status_code == 404
    waiter(timeout=30.0, interval=0.3)(lambda: not kubectl_json(
        "-n", app, "get", "ingress", "www", "--ignore-not-found", kubeconfig=kubeconfig, timeout=30),
        what="the ingress to leave the cluster")


def test_ci_page_links_a_service_and_shows_its_full_webhook_url(stack, login):
    from tests.fakes.drone import FakeDrone

    owner = login(unique("web-ci"))
    app = unique("web-ci")
    assert owner.post("/apps", json={"name": app}).status_code == 201
    assert owner.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    token, secret = "drone-" + uuid.uuid4().hex, "hook-" + uuid.uuid4().hex
    with FakeDrone(token, repo="team/" + app) as drone:
        shown = scenario("ci_page", url=stack.url, token=owner.token, app=app, server=drone.base_url,
                         repo=drone.repo, drone_token=token, secret=secret)
        assert [(x["ref"], x["event"]) for x in drone.builds] == [("refs/heads/release", "custom")], drone.builds
    link = owner.get(f"/apps/{app}/services/web/ci").json()
    assert link["auto_route"] is True and link["auto_deploy_env"] == "test", link
    assert shown["webhook_url"] == stack.url.rstrip("/") + link["webhook_url"], (shown, link)
    scenario("ci_page_unlink", url=stack.url, token=owner.token, app=app)
    assert owner.get(f"/apps/{app}/services/web/ci").status_code == 404


def test_admin_page_blocks_a_user_and_adds_a_platform_channel(stack, admin, login):
    """Issue 22: #/admin, driven in the browser, checked through the API."""
    from tests.fakes.feishu import FakeFeishu

    victim, plain = login(unique("web-victim")), login(unique("web-plain"))
    victim_name = victim.get("/me").json()["username"]
    channel = unique("ops")
    for i in range(51):  # the audit log's paging, filtered to this user
        assert plain.post("/tokens", json={"name": f"t{i}", "scope": "read", "expires_in_days": 1}).status_code == 201
    with FakeFeishu() as feishu:
        scenario("admin_page", url=stack.url, token=admin.token, plain_token=plain.token, victim=victim_name,
                 plain=plain.get("/me").json()["username"],
                 channel=channel, feishu_url=feishu.url)
        assert feishu.wait_for(1)  # the test message the page sent
    try:
        assert victim.get("/me").status_code == 401  # blocked in the browser
        assert plain.get("/me").status_code == 200
        made = [c for c in admin.get("/admin/channels").json()["items"] if c["name"] == channel]
        assert len(made) == 1 and made[0]["type"] == "feishu"
        assert set(made[0]["events"]) == {"deploy.succeeded", "deploy.failed", "server.expiring", "cluster.unreachable"}
    finally:
        admin.delete(f"/admin/blacklist/{victim_name}")
        for c in admin.get("/admin/channels").json()["items"]:
            if c["name"] == channel:
                admin.delete(f"/admin/channels/{c['id']}")


def test_templates_page_previews_as_you_type_shows_a_refusal_and_saves(stack, login):
    """Issue 22: a maintainer types a template; the preview follows (debounced), shows the
    policy's refusal by its rule; what was saved, changed and deleted is checked through the API."""
    from services.deploy.domain import templates

    names = {role: unique(f"web-tpl-{role}") for role in ("owner", "maintainer", "viewer")}
    owner, maintainer, viewer = (login(names[role]) for role in ("owner", "maintainer", "viewer"))
    app = unique("web-tpl")
    assert owner.post("/apps", json={"name": app}).status_code == 201
    for role in ("maintainer", "viewer"):
        assert owner.put(f"/apps/{app}/members/{names[role]}", json={"role": role}).status_code == 200
    good = templates.BUILTINS["default-version"]
    hostile = good["body"].replace("          image: {{ image | tojson }}\n",
                                   "          image: {{ image | tojson }}\n          securityContext: {privileged: true}\n", 1)
    assert hostile != good["body"]
    assert owner.post(f"/apps/{app}/templates", json={"name": "spare", "kind": "version", "body": good["body"],
                                                      "fields": good["fields"]}).status_code == 201
    typed = "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ name }}-notes'}\ndata: {note: typed-here}\n"
    shown = scenario("templates_page", url=stack.url, token=maintainer.token, viewer_token=viewer.token, app=app,
                     good=good["body"], hostile=hostile, typed=typed, fields=good["fields"])
    assert shown["refusal"]["rule"] == "privileged", shown
    assert shown["refusal"]["object"] == "Deployment/sample-v1"
    assert shown["refusal"]["path"] == "spec.template.spec.containers[0].securityContext.privileged"
    assert "policy" in shown["refusal"]["message"]
    assert "note: typed-here" in shown["config_map"] and "kind: ConfigMap" in shown["config_map"]
    assert 1 <= shown["typed_requests"] <= 3, shown  # once the typing pauses, not per keystroke
    assert shown["viewer"] == {"tpl-form": 0, "tpl-preview": 0, "tpl-delete": 0}
    mine = [x for x in owner.get("/templates", params={"limit": 200}).json()["items"] if x.get("app") == app]
    assert [(x["name"], x["kind"]) for x in mine] == [("mine", "version")], mine
    assert mine[0]["body"] == good["body"] + typed
    assert {f["name"]: f["default"] for f in mine[0]["fields"]} == {"progress_deadline_seconds": 600,
                                                                    "service_port": 81}


def test_clusters_page_registers_and_rotates_tokens(stack, admin, login, clusters):
    """Issue 22: #/clusters registers a cluster (here a second name for the `prod` sandbox,
    forgotten again at the end), rotates its credentials and report token; both report
    tokens are then checked against the operator intake."""
    prod = next(info for info in clusters.values() if info["env"] == "prod")
    name = unique("web-cl")
    try:
        got = scenario("clusters_page", url=stack.url, token=admin.token, plain_token=login("web.plain").token,
                       cluster=name, server=prod["url"], ca=Path(prod["ca_path"]).read_text(), sa_token=prod["token"])
        assert got["first"] != got["second"]
        detail = admin.get(f"/clusters/{name}").json()
        assert detail["env"] == "prod" and detail["server"] == prod["url"]
        assert detail["credentials_generation"] == 2  # replaced once in the browser
        for token in (got["second"], got["first"]):  # the old one still works for 10 minutes
            sent = requests.post(f"{stack.url}/api/v1/clusters/{name}/reports", json={"reports": []},
                                 headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert sent.status_code == 202, sent.text
        bad = requests.post(f"{stack.url}/api/v1/clusters/{name}/reports", json={"reports": []},
                            headers={"Authorization": "Bearer not-the-token"}, timeout=10)
        assert bad.status_code == 401
    finally:
        admin.delete(f"/clusters/{name}")


def test_servers_page_schedules_and_syncs_a_cloud_account(stack, admin):
    """Issue 22: cloud accounts on #/servers, driven in the browser, checked through the API."""
    account = admin.post("/cloud-accounts", json={"name": unique("web-cloud"), "provider": "aliyun",
                                                  "access_key_id": "LTAI-web", "access_key_secret": "s3cret-web",
                                                  "regions": ["cn-hangzhou"]}).json()
    try:
        scenario("cloud_accounts", url=stack.url, token=admin.token, account=account["name"])
        now = admin.get(f"/cloud-accounts/{account['id']}").json()
        assert now["sync_every_hours"] == 12 and now["next_sync_at"]
        assert now["last_sync_status"] in ("syncing", "ok", "failed")  # "sync now" was pressed
        assert "s3cret-web" not in json.dumps(now)
    finally:
        admin.patch(f"/cloud-accounts/{account['id']}", json={"sync_every_hours": None})
