"""Servers, cloud accounts and notification channels through the gateway."""
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.fakes.feishu import FakeFeishu


@pytest.fixture(scope="module")
def team(login, admin):
    run = uuid.uuid4().hex[:4]
    owner = login(f"ch-owner-{run}")
    app = f"ch-{run}"
    assert owner.post("/apps", json={"name": app}).status_code == 201
    people = {"owner": owner, "admin": admin, "app": app, "run": run}
    for role in ("viewer", "developer", "maintainer"):
        people[role] = login(f"ch-{role}-{run}")
        assert owner.put(f"/apps/{app}/members/ch-{role}-{run}", json={"role": role}).status_code == 200
    people["outsider"] = login(f"ch-outsider-{run}")
    return people


def test_servers_are_admin_only(team, api):
    body = {"name": "build-1", "ip": "10.0.0.5"}
    assert api.post("/servers", json=body).status_code == 401
    for role in ("viewer", "maintainer", "owner", "outsider"):
        assert team[role].post("/servers", json=body).status_code == 403
        assert team[role].get("/servers").status_code == 403


def day(offset: int) -> str:
    """A calendar date ``offset`` days from today (UTC): tests never name a fixed date."""
    return (datetime.now(timezone.utc) + timedelta(days=offset)).date().isoformat()


def expiring(admin, days: int) -> dict:
    items, cursor = [], None
    while True:
        page = admin.get("/servers", params={"expiring_within_days": days, "limit": 200,
                                             **({"cursor": cursor} if cursor else {})}).json()
        items += page["items"]
        if not (cursor := page["next_cursor"]):
            return {s["name"]: s for s in items}


def test_server_inventory_crud_and_expiry_filter(admin):
    name = "db-" + uuid.uuid4().hex[:6]
    created = admin.post("/servers", json={"name": name, "ip": "192.0.2.10", "provider": "manual",
                                           "cpu": 4, "memory_gb": 8, "expires_at": day(3),
                                           "owner": "ops", "notes": "primary"})
    assert created.status_code == 201, created.text
    server = created.json()
    assert (server["expired"], server["days_left"]) == (False, 3)
    far = admin.post("/servers", json={"name": name + "-far", "ip": "192.0.2.11", "expires_at": day(400)})
    assert far.status_code == 201
    gone = admin.post("/servers", json={"name": name + "-gone", "ip": "192.0.2.12", "expires_at": day(-2)})
    assert gone.status_code == 201 and gone.json()["expired"] is True
    soon = expiring(admin, 30)
    # the expired one is the most urgent: it is in the answer, marked expired
    assert name in soon and name + "-gone" in soon and name + "-far" not in soon
    assert soon[name]["expired"] is False and soon[name + "-gone"]["expired"] is True
    assert soon[name + "-gone"]["days_left"] == -2
    assert name + "-far" in expiring(admin, 400)
    changed = admin.patch(f"/servers/{server['id']}", json={"notes": "replica"})
    assert changed.status_code == 200 and changed.json()["notes"] == "replica"
    assert admin.get(f"/servers/{server['id']}").json()["notes"] == "replica"
    assert admin.delete(f"/servers/{server['id']}").status_code == 204
    assert admin.get(f"/servers/{server['id']}").status_code == 404


@pytest.mark.parametrize("body,field", [
    ({"name": "x", "ip": "999.1.1.1"}, "ip"), ({"ip": "192.0.2.1"}, "name"),
    ({"name": "x", "ip": "192.0.2.1", "cpu": -1}, "cpu"), ({"name": "x", "ip": "192.0.2.1", "expires_at": "soon"}, "expires_at"),
])
def test_bad_server_input_is_422_naming_the_field(admin, body, field):
    resp = admin.post("/servers", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["details"]["field"] == field


def test_cloud_account_secret_is_never_returned_and_a_failed_sync_is_visible(admin):
    secret = "planted-secret-" + uuid.uuid4().hex
    created = admin.post("/cloud-accounts", json={"name": "aliyun-" + uuid.uuid4().hex[:4], "provider": "aliyun",
                                                  "access_key_id": "LTAI-test", "access_key_secret": secret,
                                                  "regions": ["cn-hangzhou"]})
    assert created.status_code == 201, created.text
    assert secret not in created.text
    account = created.json()
    assert admin.post(f"/cloud-accounts/{account['id']}/sync").status_code == 202
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        listed = admin.get("/cloud-accounts")
        mine = next(a for a in listed.json()["items"] if a["id"] == account["id"])
        if mine["last_sync_status"] == "failed":
            break
        time.sleep(0.2)
    assert secret not in listed.text
    assert mine["last_sync_status"] == "failed"
    assert mine["last_sync_error"]


def test_channels_by_role_and_a_signed_test_message(team):
    app = team["app"]
    secret = "feishu-secret-" + uuid.uuid4().hex
    with FakeFeishu(secret=secret) as feishu:
        body = {"name": "team-feishu", "type": "feishu", "url": feishu.url, "secret": secret,
                "events": ["deploy.failed", "deploy.succeeded"]}
        assert team["developer"].post(f"/apps/{app}/channels", json=body).status_code == 403
        assert team["outsider"].post(f"/apps/{app}/channels", json=body).status_code == 404
        created = team["maintainer"].post(f"/apps/{app}/channels", json=body)
        assert created.status_code == 201, created.text
        assert secret not in created.text
        channel = created.json()
        listed = team["viewer"].get(f"/apps/{app}/channels")
        assert listed.status_code == 200 and secret not in listed.text
        assert [c["name"] for c in listed.json()["items"]] == ["team-feishu"]
        assert team["viewer"].post(f"/apps/{app}/channels/{channel['id']}/test").status_code == 403
        tested = team["maintainer"].post(f"/apps/{app}/channels/{channel['id']}/test")
        assert tested.status_code == 200, tested.text
        assert feishu.wait_for(1)  # it arrived and its signature checked out
        assert team["viewer"].get(f"/apps/{app}/deliveries").status_code == 200
        assert team["developer"].delete(f"/apps/{app}/channels/{channel['id']}").status_code == 403
        assert team["maintainer"].delete(f"/apps/{app}/channels/{channel['id']}").status_code == 204
        assert team["viewer"].get(f"/apps/{app}/channels").json()["items"] == []


def test_a_channel_that_refuses_the_test_message_is_a_visible_503(team):
    app = team["app"]
    with FakeFeishu(secret="right-secret") as feishu:
        created = team["maintainer"].post(f"/apps/{app}/channels", json={
            "name": "wrong-secret", "type": "feishu", "url": feishu.url, "secret": "wrong-secret",
            "events": ["deploy.failed"]})
        assert created.status_code == 201
        resp = team["maintainer"].post(f"/apps/{app}/channels/{created.json()['id']}/test")
        assert resp.status_code == 503
        assert resp.json()["error"]["message"]


@pytest.mark.parametrize("body,field", [
    ({"name": "x", "type": "smoke-signal", "url": "http://127.0.0.1:1/", "events": []}, "type"),
    ({"name": "x", "type": "webhook", "url": "not a url", "events": []}, "url"),
    ({"name": "x", "type": "webhook", "url": "http://127.0.0.1:1/", "events": ["server.exploded"]}, "events"),
])
def test_bad_channels_are_422_naming_the_field(team, body, field):
    resp = team["maintainer"].post(f"/apps/{team['app']}/channels", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["details"]["field"] == field
