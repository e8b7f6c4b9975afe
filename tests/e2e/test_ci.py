"""CI hand-off end to end: a Drone stand-in, its signed webhooks, versions and deploys."""
import uuid

import pytest

from tests.fakes.drone import FakeDrone, build_payload, send_webhook
from tests.fakes.feishu import FakeFeishu
from tests.waiting import poller

SECRET = "drone-webhook-" + uuid.uuid4().hex
TOKEN = "drone-token-" + uuid.uuid4().hex

wait_for = poller(timeout=60.0, interval=0.3, fail=False)


@pytest.fixture(scope="module")
def drone():
    with FakeDrone(TOKEN, repo="team/web-" + uuid.uuid4().hex[:4]) as fake:
        yield fake


@pytest.fixture(scope="module")
def linked(admin, login, clusters, drone):
    app = "ci-" + uuid.uuid4().hex[:6]
    assert admin.post("/apps", json={"name": app}).status_code == 201
    assert admin.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    first = admin.post(f"/apps/{app}/services/web/versions",
                       json={"name": "v0", "image": "nginx:1.25", "port": 80, "replicas": 1})
    assert first.status_code == 201, first.text
    link = admin.put(f"/apps/{app}/services/web/ci", json={
        "provider": "drone", "server": drone.base_url, "repo": drone.repo, "token": TOKEN,
        "image": "registry.local/team/web", "webhook_secret": SECRET, "auto_deploy_env": "test"})
    assert link.status_code == 200, link.text
    assert TOKEN not in link.text and SECRET not in link.text
    return app


def hook_url(stack):
    return stack.url + "/api/v1/hooks/ci/drone"


def test_only_maintainers_link_ci(linked, admin, login):
    dev_name = "ci-dev-" + uuid.uuid4().hex[:4]
    dev = login(dev_name)
    admin.put(f"/apps/{linked}/members/{dev_name}", json={"role": "developer"})
    resp = dev.put(f"/apps/{linked}/services/web/ci", json={"provider": "drone"})
    assert resp.status_code == 403


def test_builds_are_listed_and_a_branch_build_is_asked_for(linked, admin, drone):
    drone.add_build(1, "success", "refs/heads/main", "push")
    listed = admin.get(f"/apps/{linked}/services/web/builds")
    assert listed.status_code == 200 and listed.json()["items"][0]["number"] == 1
    asked = admin.post(f"/apps/{linked}/services/web/builds", json={"ref": "main"})
    assert asked.status_code == 202 and asked.json()["status"] == "pending"
    posts = [r for r in drone.received if r.method == "POST"]
    assert posts[-1].query.get("branch") == "main"
    assert posts[-1].headers["authorization"] == f"Bearer {TOKEN}"


def test_a_tag_build_becomes_a_version_and_is_deployed_to_test(linked, admin, stack, drone):
    build = drone.add_build(7, "success", "refs/tags/v1.2.0")
    resp = send_webhook(hook_url(stack), build_payload(drone.repo, build), SECRET)
    assert resp.status_code == 202 and resp.json()["result"] == "recorded"
    version = admin.get(f"/apps/{linked}/services/web/versions/v1-2-0")
    assert version.status_code == 200, version.text
    assert version.json()["image"] == "registry.local/team/web:v1.2.0"
    assert version.json()["port"] == 80  # configured like the latest version
    records = wait_for(lambda: admin.get(f"/apps/{linked}/records", params={"version": "v1-2-0"}).json()["items"],
                       lambda items: items and items[0]["status"] in ("succeeded", "failed"))
    assert records and records[0]["status"] == "succeeded", records
    assert {t["cluster"] for t in records[0]["targets"]} == {"test"}


def test_a_replayed_webhook_changes_nothing(linked, admin, stack, drone):
    build = drone.add_build(8, "success", "refs/tags/v1.3.0")
    payload = build_payload(drone.repo, build)
    assert send_webhook(hook_url(stack), payload, SECRET).json()["result"] == "recorded"
    again = send_webhook(hook_url(stack), payload, SECRET)
    assert again.status_code == 202 and again.json()["result"] == "duplicate"
    names = [v["name"] for v in admin.get(f"/apps/{linked}/services/web/versions").json()["items"]]
    assert names.count("v1-3-0") == 1
    records = admin.get(f"/apps/{linked}/records", params={"version": "v1-3-0"}).json()["items"]
    assert len(records) == 1


@pytest.mark.parametrize("how", ["wrong-secret", "tampered", "unsigned", "stale"])
def test_bad_signatures_are_401_and_change_nothing(linked, admin, stack, drone, how):
    build = drone.add_build(50 + ["wrong-secret", "tampered", "unsigned", "stale"].index(how),
                            "success", f"refs/tags/bad-{how}")
    payload = build_payload(drone.repo, build)
    if how == "wrong-secret":
        resp = send_webhook(hook_url(stack), payload, "not-the-secret-" + uuid.uuid4().hex)
    elif how == "tampered":
        resp = send_webhook(hook_url(stack), payload, SECRET, tamper=True)
    elif how == "stale":
        resp = send_webhook(hook_url(stack), payload, SECRET, date="Wed, 01 Jan 2020 00:00:00 GMT")
    else:
        import requests
        resp = requests.post(hook_url(stack), json=payload, timeout=10)
    assert resp.status_code == 401, resp.text
    assert admin.get(f"/apps/{linked}/services/web/versions/bad-{how}").status_code == 404


def test_a_failed_build_reaches_feishu(linked, admin, stack, drone):
    with FakeFeishu() as feishu:
        channel = admin.post(f"/apps/{linked}/channels", json={
            "name": "builds", "type": "feishu", "url": feishu.url, "events": ["build.failed"]})
        assert channel.status_code == 201, channel.text
        build = drone.add_build(9, "failure", "refs/tags/v2.0.0")
        assert send_webhook(hook_url(stack), build_payload(drone.repo, build), SECRET).status_code == 202
        received = feishu.wait_for(1, timeout=20)
        assert received
        text = received[0].body.decode()
        assert linked in text and "web" in text and "v2.0.0" in text
    assert admin.get(f"/apps/{linked}/services/web/versions/v2-0-0").status_code == 404
