"""SQL injection and path traversal in every name: each request is refused with a clear
4xx and a message, nothing is created, nothing answers 5xx, and no answer shows what
lies behind (SQL errors, tracebacks, file contents, other rows)."""
from __future__ import annotations

from urllib.parse import quote

import pytest

HOSTILE = [
    "' OR '1'='1",
    "x'; DROP TABLE org_apps; --",
    "admin'--",
    "\" OR \"\"=\"",
    "1 OR 1=1",
    "1; SELECT SLEEP(5)",
    "%' UNION SELECT username, email FROM auth_users -- ",
    "`name`",
    "../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "/etc/passwd",
    "....//....//etc/passwd",
    "%2e%2e%2fetc%2fpasswd",
    "name\n",
    "na\x00me",
    "<script>alert(1)</script>",
    "{{7*7}}",
    "x" * 300,
]
# What no answer may contain: database and Python internals, a file read from disk.
# (Answers may quote the name they refuse; these markers are not in any of them.)
LEAKS = ["syntax", "pymysql", "sqlalchemy", "traceback", "mariadb", "root:x:0:0", "[extensions]",
         "\"internal\"", "operationalerror", "integrityerror", "inj-member"]
APP = "inj-target"


def _clear_refusal(answer, statuses=(400, 404, 422)) -> dict:
    assert answer.status_code in statuses, (answer.request.method, answer.request.url,
                                           answer.status_code, answer.text[:300])
    error = answer.json()["error"]
    assert error["code"] and error["message"].strip(), error
    lowered = answer.text.lower()
    assert not [leak for leak in LEAKS if leak in lowered], answer.text[:300]
    return error


@pytest.fixture(scope="module")
def world(admin, login):
    assert admin.post("/apps", json={"name": APP}).status_code == 201
    assert admin.post(f"/apps/{APP}/services", json={"name": "web"}).status_code == 201
    assert admin.post(f"/apps/{APP}/services/web/versions",
                      json={"name": "v1", "image": "nginx:1.27", "port": 80}).status_code == 201
    login("inj-member")  # someone to search for
    return APP


def _snapshot(admin) -> dict:
    """Everything a name could have been created in."""
    return {
        "apps": sorted(a["name"] for a in admin.get("/apps", params={"limit": 200}).json()["items"]),
        "services": sorted(s["name"] for s in admin.get(f"/apps/{APP}/services").json()["items"]),
        "versions": sorted(v["name"] for v in admin.get(f"/apps/{APP}/services/web/versions").json()["items"]),
        "ingresses": sorted(i["name"] for i in admin.get(f"/apps/{APP}/ingresses").json()["items"]),
        "templates": sorted(t["name"] for t in admin.get("/templates").json()["items"]),
        "clusters": sorted(c["name"] for c in admin.get("/clusters").json()["items"]),
        "servers": sorted(s["name"] for s in admin.get("/servers", params={"limit": 200}).json()["items"]),
        "accounts": sorted(a["name"] for a in admin.get("/cloud-accounts").json()["items"]),
        "channels": sorted(c["name"] for c in admin.get(f"/apps/{APP}/channels").json()["items"]),
    }


def test_hostile_names_in_bodies_are_refused_and_nothing_is_created(admin, world):
    before = _snapshot(admin)
    creates = [
        ("/apps", lambda n: {"name": n}),
        (f"/apps/{APP}/services", lambda n: {"name": n}),
        (f"/apps/{APP}/services/web/versions", lambda n: {"name": n, "image": "nginx:1.27", "port": 80}),
        (f"/apps/{APP}/ingresses", lambda n: {"name": n, "host": "inj.example.com",
                                              "routes": [{"path": "/", "service": "web", "version": "v1"}]}),
        (f"/apps/{APP}/templates", lambda n: {"name": n, "kind": "version", "body": "a: 1"}),
        ("/clusters", lambda n: {"name": n, "env": "test", "server": "https://127.0.0.1:9",
                                 "ca_cert": "x", "token": "x"}),
        ("/servers", lambda n: {"name": n, "ip": "10.9.9.9"}),
        ("/cloud-accounts", lambda n: {"name": n, "access_key_id": "LTAIexample", "access_key_secret": "s",
                                       "regions": ["cn-hangzhou"]}),
        (f"/apps/{APP}/channels", lambda n: {"name": n, "type": "webhook", "url": "http://127.0.0.1:9/h",
                                             "events": ["deploy.failed"]}),
    ]
    for path, body in creates:
        for name in HOSTILE:
            error = _clear_refusal(admin.post(path, json=body(name)), statuses=(400, 422))
            assert error["details"].get("field") == "name", (path, name, error)
    # Names in other places: an ingress route, a version's template, a deploy's clusters.
    for name in HOSTILE:
        _clear_refusal(admin.post(f"/apps/{APP}/ingresses", json={
            "name": "ok", "host": "inj.example.com", "routes": [{"path": "/", "service": name, "version": "v1"}]}))
        _clear_refusal(admin.post(f"/apps/{APP}/services/web/versions", json={
            "name": "v2", "image": "nginx:1.27", "port": 80, "template": name}))
        _clear_refusal(admin.post(f"/apps/{APP}/services/web/versions/v1/deploy", json={"clusters": [name]}))
    assert _snapshot(admin) == before


def test_hostile_names_in_paths_are_not_found(admin, world):
    for name in HOSTILE:
        seg = quote(name, safe="")
        for method, path in [
            ("GET", f"/apps/{seg}"), ("DELETE", f"/apps/{seg}"), ("GET", f"/apps/{seg}/members"),
            ("GET", f"/apps/{APP}/services/{seg}"), ("DELETE", f"/apps/{APP}/services/{seg}"),
            ("GET", f"/apps/{APP}/services/web/versions/{seg}"),
            ("DELETE", f"/apps/{APP}/services/web/versions/{seg}"),
            ("POST", f"/apps/{APP}/ingresses/{seg}/deploy"),
            ("GET", f"/clusters/{seg}"), ("DELETE", f"/clusters/{seg}"),
            ("GET", f"/servers/{seg}"), ("DELETE", f"/apps/{APP}/channels/{seg}"),
            ("PUT", f"/apps/{APP}/members/{seg}"), ("DELETE", f"/apps/{APP}/members/{seg}"),
            ("PUT", f"/admin/blacklist/{seg}"), ("DELETE", f"/tokens/{seg}"),
            ("GET", f"/auth/login/{seg}"),
        ]:
            body = {"role": "viewer"} if method == "PUT" else ({"env": "test"} if method == "POST" else None)
            _clear_refusal(admin.request(method, path, json=body))


def test_hostile_filters_are_refused(admin, member_of_world):
    for name in HOSTILE:
        error = _clear_refusal(member_of_world.get("/users", params={"q": name}), statuses=(422,))
        assert error["details"]["field"] == "q"
        for param in ("service", "version"):
            _clear_refusal(admin.get(f"/apps/{APP}/records", params={param: name}), statuses=(422,))
        _clear_refusal(admin.get("/clusters", params={"env": name}), statuses=(422,))
    # An honest search still finds people.
    found = member_of_world.get("/users", params={"q": "inj-mem"})
    assert found.status_code == 200 and [u["username"] for u in found.json()["items"]] == ["inj-member"]


@pytest.fixture
def member_of_world(admin, login, world):
    assert admin.put(f"/apps/{APP}/members/inj-member", json={"role": "viewer"}).status_code == 200
    return login("inj-member")


def test_case_variants_of_an_app_name_do_not_outlive_a_membership(admin, login, world):
    """MariaDB compares names case-insensitively. 'INJ-TARGET' once found 'inj-target', and
    the role it gave was cached under a key no membership change cleared: a removed member
    kept access for minutes through a variant of the name."""
    assert admin.put(f"/apps/{APP}/members/case-member", json={"role": "viewer"}).status_code in (200, 404)
    member = login("case-member")
    assert admin.put(f"/apps/{APP}/members/case-member", json={"role": "viewer"}).status_code == 200
    assert member.get(f"/apps/{APP}").status_code == 200
    for variant in (APP.upper(), APP.title(), APP[:-1] + APP[-1].upper()):
        _clear_refusal(member.get(f"/apps/{variant}"), statuses=(404,))
        _clear_refusal(admin.get(f"/apps/{variant}/members"), statuses=(404,))
    assert admin.delete(f"/apps/{APP}/members/case-member").status_code == 204
    for path in (f"/apps/{APP}", f"/apps/{APP.upper()}", f"/apps/{APP.upper()}/members"):
        _clear_refusal(member.get(path), statuses=(404,))
