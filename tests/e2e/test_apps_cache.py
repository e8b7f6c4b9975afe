"""``GET /apps`` and ``GET /apps/{app}`` are cached per user in Redis; never stale.

Each change is made through the stack's gateway and read back, at once, through a
second gateway process that had the old answer cached: the very next read must
show the change. A third gateway reaches Redis through a TCP proxy the test can
cut: without Redis it answers from the services (never a 500, never stale).
"""
import dataclasses
import time
import uuid

import pytest
import requests
from sqlalchemy import text

from shared.keys import Keys
from tests.conftest import free_port
from tests.e2e.conftest import Api
from tests.tcp_proxy import Proxy


def start_gateway(stack, run_dir, **env):
    """Another gateway process of the same stack (its own port, pid file and log)."""
    other = dataclasses.replace(stack, run_dir=run_dir, gateway_port=free_port(), localauth_port=0,
                                env={**stack.env, **env})
    other.start("gateway", 0)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(other.url + "/healthz", timeout=2).status_code == 200:
                return other
        except requests.RequestException:
            pass
        time.sleep(0.2)
    other.stop_all()
    raise AssertionError("the second gateway did not come up")


@pytest.fixture(scope="module")
def gateway_b(stack, tmp_path_factory):
    other = start_gateway(stack, tmp_path_factory.mktemp("gateway-b"))
    yield other
    other.stop_all()


@pytest.fixture(scope="module")
def run():
    return uuid.uuid4().hex[:5]


@pytest.fixture(scope="module")
def people(login, run):
    """Three users, each logged in once: (client at gateway A, client at gateway B)."""
    return {name: login(f"cache-{name}-{run}") for name in ("alice", "bob", "carol")}


def at(gateway, client: Api) -> Api:
    return Api(gateway.url, client.token)


def listed(client: Api, **params) -> dict:
    resp = client.get("/apps", params=params or None)
    assert resp.status_code == 200, resp.text
    return {a["name"]: a for a in resp.json()["items"]}


def warm(client: Api, app: str | None = None) -> dict:
    """Read twice, so the second answer came from the cache."""
    listed(client)
    if app is not None:
        client.get(f"/apps/{app}")
        client.get(f"/apps/{app}")
    return listed(client)


def test_the_list_is_kept_in_redis_under_the_current_generations(stack, gateway_b, people, redis_client):
    alice = at(gateway_b, people["alice"])
    app = f"cache-kept-{uuid.uuid4().hex[:6]}"
    assert people["alice"].post("/apps", json={"name": app}).status_code == 201
    body = alice.get("/apps").text
    me = alice.get("/me").json()
    keys = Keys(stack.env["REDIS_PREFIX"])
    tag = f"{redis_client.get(keys.apps_generation)}.{redis_client.get(keys.member_generation(me['id']))}"
    assert redis_client.get(keys.app_list(me["id"], "member", 50)) == f"{tag}\n{body}"
    assert alice.get("/apps").text == body


def test_a_created_app_is_listed_at_once_by_another_gateway(gateway_b, people):
    a, b = people["alice"], at(gateway_b, people["alice"])
    app = f"cache-new-{uuid.uuid4().hex[:6]}"
    assert app not in warm(b, app)
    assert b.get(f"/apps/{app}").status_code == 404  # and that answer is cached too
    assert a.post("/apps", json={"name": app}).status_code == 201
    assert listed(b)[app]["role"] == "owner"
    assert b.get(f"/apps/{app}").json()["role"] == "owner"


def test_a_changed_app_is_listed_with_its_new_fields(gateway_b, people):
    a, b = people["alice"], at(gateway_b, people["alice"])
    app = f"cache-upd-{uuid.uuid4().hex[:6]}"
    assert a.post("/apps", json={"name": app, "display_name": "Before"}).status_code == 201
    assert warm(b, app)[app]["display_name"] == "Before"
    assert a.patch(f"/apps/{app}", json={"display_name": "After", "description": "new"}).status_code == 200
    item = listed(b)[app]
    assert (item["display_name"], item["description"]) == ("After", "new")
    assert b.get(f"/apps/{app}").json()["display_name"] == "After"


def test_a_deleted_app_disappears_and_its_name_can_come_back(gateway_b, people):
    a, b = people["alice"], at(gateway_b, people["alice"])
    app = f"cache-del-{uuid.uuid4().hex[:6]}"
    assert a.post("/apps", json={"name": app}).status_code == 201
    assert app in warm(b, app)
    assert a.delete(f"/apps/{app}").status_code == 204
    assert app not in listed(b)
    assert b.get(f"/apps/{app}").status_code == 404
    # Where clusters are registered (other tests of the session may have done it), the old app's
    # namespaces terminate first; until then the name is refused as namespace_exists, never as
    # the app existing.
    deadline = time.monotonic() + 30
    while (again := a.post("/apps", json={"name": app})).status_code == 409 and time.monotonic() < deadline:
        assert again.json()["error"]["code"] == "namespace_exists", again.text
        time.sleep(0.5)
    assert again.status_code == 201, again.text
    assert app in listed(b)
    assert b.get(f"/apps/{app}").json()["role"] == "owner"


def test_member_added_role_changed_removed_each_show_at_once(gateway_b, people, run):
    a = people["alice"]
    bob = at(gateway_b, people["bob"])
    app = f"cache-mem-{uuid.uuid4().hex[:6]}"
    assert a.post("/apps", json={"name": app}).status_code == 201
    assert app not in warm(bob, app)
    assert bob.get(f"/apps/{app}").status_code == 404
    for role in ("viewer", "maintainer"):
        assert a.put(f"/apps/{app}/members/cache-bob-{run}", json={"role": role}).status_code == 200
        assert listed(bob)[app]["role"] == role
        assert bob.get(f"/apps/{app}").json()["role"] == role
        warm(bob, app)
    assert a.delete(f"/apps/{app}/members/cache-bob-{run}").status_code == 204
    assert app not in listed(bob)
    assert bob.get(f"/apps/{app}").status_code == 404


def test_one_users_change_leaves_the_others_list_right(gateway_b, people, run):
    carol = at(gateway_b, people["carol"])
    app = f"cache-other-{uuid.uuid4().hex[:6]}"
    assert people["carol"].post("/apps", json={"name": app}).status_code == 201
    before = warm(carol)
    assert people["alice"].post("/apps", json={"name": app + "-a"}).status_code == 201
    assert listed(carol) == before


def test_a_blocked_user_gets_401_at_once_not_their_cached_list(admin, gateway_b, login, run):
    name = f"cache-dan-{run}"
    dan = login(name, fresh=True)
    app = f"cache-blk-{uuid.uuid4().hex[:6]}"
    assert dan.post("/apps", json={"name": app}).status_code == 201
    dan_b = at(gateway_b, dan)
    assert app in warm(dan_b, app)
    assert admin.put(f"/admin/blacklist/{name}").status_code == 200
    assert dan_b.get("/apps").status_code == 401
    assert dan_b.get(f"/apps/{app}").status_code == 401
    assert admin.delete(f"/admin/blacklist/{name}").status_code == 204
    assert app in listed(dan_b)


def test_admins_see_every_app_as_it_is_now(admin, gateway_b, people, db_engine):
    admin_b = at(gateway_b, admin)

    def every_page():
        seen, cursor = {}, None
        while True:
            page = admin_b.get("/apps", params={"limit": 200, **({"cursor": cursor} if cursor else {})}).json()
            seen.update({a["name"]: a["display_name"] for a in page["items"]})
            cursor = page["next_cursor"]
            if not cursor:
                return seen

    def truth():
        with db_engine.connect() as conn:
            return dict(conn.execute(text("SELECT name, display_name FROM org_applications")).all())

    every_page()
    app = f"cache-adm-{uuid.uuid4().hex[:6]}"
    a = people["alice"]
    assert a.post("/apps", json={"name": app}).status_code == 201
    assert every_page() == truth()
    assert a.patch(f"/apps/{app}", json={"display_name": "Seen by admins"}).status_code == 200
    assert every_page() == truth()
    assert admin_b.get(f"/apps/{app}").json()["role"] == "admin"
    assert a.delete(f"/apps/{app}").status_code == 204
    assert every_page() == truth()
    assert admin_b.get(f"/apps/{app}").status_code == 404


# -- without Redis -------------------------------------------------------------------


@pytest.fixture(scope="module")
def cut_off(stack, tmp_path_factory):
    """(gateway whose Redis goes through a proxy, the proxy)."""
    redis_url = stack.env["REDIS_URL"]
    host_port, _, db = redis_url.rpartition("/")
    proxy = Proxy(int(host_port.rsplit(":", 1)[1]))
    other = start_gateway(stack, tmp_path_factory.mktemp("gateway-c"),
                          REDIS_URL=f"redis://127.0.0.1:{proxy.port}/{db}")
    yield other, proxy
    other.stop_all()
    proxy.cut()


def test_without_redis_the_gateway_answers_from_the_services(admin, cut_off, login, people, run, api):
    gateway, proxy = cut_off
    a = people["alice"]
    alice = at(gateway, a)
    app = f"cache-cut-{uuid.uuid4().hex[:6]}"
    assert a.post("/apps", json={"name": app}).status_code == 201
    before = warm(alice, app)
    assert app in before
    proxy.cut()
    try:
        assert listed(alice) == before
        assert alice.get(f"/apps/{app}").json()["role"] == "owner"
        # changes made meanwhile (org reaches Redis) are seen at once
        assert a.patch(f"/apps/{app}", json={"display_name": "Changed while cut"}).status_code == 200
        assert listed(alice)[app]["display_name"] == "Changed while cut"
        assert a.put(f"/apps/{app}/members/cache-bob-{run}", json={"role": "developer"}).status_code == 200
        assert listed(at(gateway, people["bob"]))[app]["role"] == "developer"
        # authentication still holds: bad tokens and blocked users are refused, not 500
        assert at(gateway, api).get("/apps").status_code == 401
        assert Api(gateway.url, "mae_p_" + "x" * 43).get("/apps").status_code == 401
        name = f"cache-eve-{run}"
        eve = at(gateway, login(name, fresh=True))
        assert eve.get("/apps").status_code == 200
        assert admin.put(f"/admin/blacklist/{name}").status_code == 200
        assert eve.get("/apps").status_code == 401
        assert admin.delete(f"/admin/blacklist/{name}").status_code == 204
        assert a.delete(f"/apps/{app}").status_code == 204
        assert app not in listed(alice)
    finally:
        proxy.restore()
    # Redis is back: what the gateway had cached before the cut is not served
    assert app not in listed(alice)
    assert alice.get(f"/apps/{app}").status_code == 404
