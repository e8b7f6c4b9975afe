"""``make screenshots``: PNGs of the console's main pages, in English and Chinese.

Not collected with the suite (its name does not match ``test_*.py``); the
Makefile names it on pytest's command line, with MAE_SCREENSHOTS set to the
output folder. It drives the same stack fixtures as the e2e tests.
``seed_shop`` (the app, members, a channel, servers and two deploy records) is also
the data tests/e2e/test_console_a11y.py runs axe-core over.
"""
from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.e2e.journey import ensure_test_cluster
from tests.e2e.test_console import scenario

SHOTS = os.environ.get("MAE_SCREENSHOTS", "docs/screenshots")


def seed_shop(request, stack, admin, login, app="shop"):
    """The app ``app`` owned by mei.chen, with li.wei, a channel, service web with v1
    deployed (succeeded) and v2 failed, and four servers; returns owner, cluster, records."""
    owner = login("mei.chen")
    login("li.wei")
    if owner.get(f"/apps/{app}").status_code == 404:
        owner.post("/apps", json={"name": app, "display_name": "网上商店 Shop", "description": "The team's web shop."})
        owner.put(f"/apps/{app}/members/li.wei", json={"role": "developer"})
        owner.post(f"/apps/{app}/channels", json={"name": "team-webhook", "type": "webhook",
                                                  "url": "https://hooks.example.test/mae",
                                                  "events": ["deploy.succeeded", "deploy.failed"]})
    today = datetime.now(timezone.utc)
    have = {s["name"] for s in admin.get("/servers", params={"limit": 200}).json()["items"]}
    for name, days, region in (("db-primary", 12, "cn-hangzhou"), ("build-runner", -2, "cn-shanghai"),
                               ("web-01", 200, "cn-hangzhou"), ("cache-01", 28, "cn-beijing")):
        if name in have:  # seeded by an earlier test of this session: one row each, as pages show them
            continue
        admin.post("/servers", json={"name": name, "ip": f"10.0.0.{len(name)}", "provider": "aliyun",
                                     "region": region, "owner": "ops",
                                     "expires_at": (today + timedelta(days=days)).strftime("%Y-%m-%d")})
    cluster = ensure_test_cluster(request, stack, admin)
    owner.post(f"/apps/{app}/services", json={"name": "web", "description": "storefront"})
    owner.post(f"/apps/{app}/services/web/versions", json={"name": "v1", "image": "nginx:1.27", "port": 80, "replicas": 2})
    owner.post(f"/apps/{app}/services/web/versions", json={"name": "v2", "image": "shop/web:missing", "port": 80})
    owner.post(f"/apps/{app}/ingresses", json={"name": "www", "host": f"www.{app}.example.test",
                                               "routes": [{"path": "/", "service": "web"}]})
    records = {}
    for ver in ("v1", "v2"):
        rid = owner.post(f"/apps/{app}/services/web/versions/{ver}/deploy",
                         json={"clusters": [cluster]}).json()["record_id"]
        deadline = time.monotonic() + 90
        while owner.get(f"/records/{rid}").json()["status"] not in ("succeeded", "failed") \
                and time.monotonic() < deadline:
            time.sleep(0.5)
        records[ver] = rid
    return owner, cluster, records


def console_pages(app, records):
    """[name, path, special] for every console page; special "admin" pages are the admin's,
    "preview" opens the deploy preview, "template-preview" waits for the template editor's."""
    return [["apps", "/#/apps", None], ["app", f"/#/apps/{app}", None],
            ["members", f"/#/apps/{app}/members", None], ["channels", f"/#/apps/{app}/channels", None],
            ["version", f"/#/apps/{app}/services/web/versions/v1", None],
            ["deploy-preview", f"/#/apps/{app}/services/web/versions/v1/deploy", "preview"],
            ["record-succeeded", f"/#/records/{records['v1']}", None],
            ["record-failed", f"/#/records/{records['v2']}", None],
            ["ingresses", f"/#/apps/{app}/ingresses", None],
            ["ci", f"/#/apps/{app}/services/web/ci", None],
            ["templates", f"/#/apps/{app}/templates", None],
            ["template-editor", f"/#/apps/{app}/templates?start=default-version", "template-preview"],
            ["account", "/#/account", None],
            ["clusters", "/#/clusters", None], ["servers", "/#/servers", "admin"],
            ["admin", "/#/admin", "admin"]]


def test_screenshots(request, stack, admin, login):
    app = "shop"
    owner, _cluster, records = seed_shop(request, stack, admin, login, app)
    pages = console_pages(app, records)
    out = Path(SHOTS).resolve()
    result = scenario("screenshots", timeout=600, url=stack.url, owner=owner.token, admin=admin.token,
                      pages=pages, out=str(out))
    assert len(result["written"]) == 2 * (len(pages) + 1)
    for name in result["written"]:
        assert (out / name).stat().st_size > 0, name
