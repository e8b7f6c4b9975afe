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
                       json={"name": "v0", "image": "nginx:1.25", "port": 80, "replicas": 1,
                             "secret_env": {"API_KEY": "ci-secret-" + uuid.uuid4().hex}})
    assert first.status_code == 201, first.text
    link = admin.put(f"/apps/{app}/services/web/ci", json={
        "provider": "drone", "server": drone.base_url, "repo": drone.repo, "token": TOKEN,
        "image": "registry.local/team/web", "webhook_secret": SECRET, "auto_deploy_env": "test"})
    assert link.status_code == 200, link.text
    assert TOKEN not in link.text and SECRET not in link.text
    assert link.json()["webhook_url"] == f"/api/v1/hooks/ci/drone/{link.json()['id']}"
    return app


@pytest.fixture(scope="module")
def webhook_url(linked, admin):
    return admin.get(f"/apps/{linked}/services/web/ci").json()["webhook_url"]


def hook_url(stack, webhook_url):
    """The link's own address (the answer gives the path; the CI is told the whole URL)."""
    return stack.url + webhook_url


def test_the_link_is_shown_with_its_webhook_url_and_never_its_secrets(linked, admin, login):
    shown = admin.get(f"/apps/{linked}/services/web/ci")
    assert shown.status_code == 200, shown.text
    assert shown.json()["repo"] and shown.json()["webhook_url"].startswith("/api/v1/hooks/ci/drone/")
    assert TOKEN not in shown.text and SECRET not in shown.text
    viewer_name = "ci-viewer-" + uuid.uuid4().hex[:4]
    viewer = login(viewer_name)
    assert viewer.get(f"/apps/{linked}/services/web/ci").status_code == 404   # not a member: no such app
    admin.put(f"/apps/{linked}/members/{viewer_name}", json={"role": "viewer"})
    assert viewer.get(f"/apps/{linked}/services/web/ci").json() == shown.json()
    assert viewer.delete(f"/apps/{linked}/services/web/ci").status_code == 403


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


def test_a_tag_build_becomes_a_version_and_is_deployed_to_test(linked, admin, stack, drone, webhook_url):
    build = drone.add_build(7, "success", "refs/tags/v1.2.0")
    resp = send_webhook(hook_url(stack, webhook_url), build_payload(drone.repo, build), SECRET)
    assert resp.status_code == 202 and resp.json()["result"] == "recorded"
    version = admin.get(f"/apps/{linked}/services/web/versions/v1-2-0")
    assert version.status_code == 200, version.text
    assert version.json()["image"] == "registry.local/team/web:v1.2.0"
    assert version.json()["port"] == 80  # configured like the latest version
    assert version.json()["secret_env"] == ["API_KEY"]  # with its secrets too
    records = wait_for(lambda: admin.get(f"/apps/{linked}/records", params={"version": "v1-2-0"}).json()["items"],
                       lambda items: items and items[0]["status"] in ("succeeded", "failed"))
    assert records and records[0]["status"] == "succeeded", records
    assert {t["cluster"] for t in records[0]["targets"]} == {"test"}


def test_a_replayed_webhook_changes_nothing(linked, admin, stack, drone, webhook_url):
    build = drone.add_build(8, "success", "refs/tags/v1.3.0")
    payload = build_payload(drone.repo, build)
    assert send_webhook(hook_url(stack, webhook_url), payload, SECRET).json()["result"] == "recorded"
    again = send_webhook(hook_url(stack, webhook_url), payload, SECRET)
    assert again.status_code == 202 and again.json()["result"] == "duplicate"
    names = [v["name"] for v in admin.get(f"/apps/{linked}/services/web/versions").json()["items"]]
    assert names.count("v1-3-0") == 1
    records = admin.get(f"/apps/{linked}/records", params={"version": "v1-3-0"}).json()["items"]
    assert len(records) == 1


@pytest.mark.parametrize("how", ["wrong-secret", "tampered", "unsigned", "stale"])
def test_bad_signatures_are_401_and_change_nothing(linked, admin, stack, drone, webhook_url, how):
    build = drone.add_build(50 + ["wrong-secret", "tampered", "unsigned", "stale"].index(how),
                            "success", f"refs/tags/bad-{how}")
    payload = build_payload(drone.repo, build)
    if how == "wrong-secret":
        resp = send_webhook(hook_url(stack, webhook_url), payload, "not-the-secret-" + uuid.uuid4().hex)
    elif how == "tampered":
        resp = send_webhook(hook_url(stack, webhook_url), payload, SECRET, tamper=True)
    elif how == "stale":
        resp = send_webhook(hook_url(stack, webhook_url), payload, SECRET, date="Wed, 01 Jan 2020 00:00:00 GMT")
    else:
        import requests
        resp = requests.post(hook_url(stack, webhook_url), json=payload, timeout=10)
    assert resp.status_code == 401, resp.text
    assert admin.get(f"/apps/{linked}/services/web/versions/bad-{how}").status_code == 404


def test_a_failed_build_reaches_feishu(linked, admin, stack, drone, webhook_url):
    with FakeFeishu() as feishu:
        channel = admin.post(f"/apps/{linked}/channels", json={
            "name": "builds", "type": "feishu", "url": feishu.url, "events": ["build.failed"]})
        assert channel.status_code == 201, channel.text
        build = drone.add_build(9, "failure", "refs/tags/v2.0.0")
        assert send_webhook(hook_url(stack, webhook_url), build_payload(drone.repo, build), SECRET).status_code == 202
        received = feishu.wait_for(1, timeout=20)
        assert received
        text = received[0].body.decode()
        assert linked in text and "web" in text and "v2.0.0" in text
    assert admin.get(f"/apps/{linked}/services/web/versions/v2-0-0").status_code == 404


def test_the_shared_address_of_old_acts_for_no_link(linked, admin, stack, drone, webhook_url):
    """``POST /hooks/ci/drone`` chose links by the slug in the body: it now refuses even a
    webhook correctly signed with the link's secret, and says where to post instead."""
    build = drone.add_build(60, "success", "refs/tags/v6.0.0")
    old = send_webhook(stack.url + "/api/v1/hooks/ci/drone", build_payload(drone.repo, build), SECRET)
    assert old.status_code == 401, old.text
    assert "webhook_url" in old.json()["error"]["message"]
    assert admin.get(f"/apps/{linked}/services/web/versions/v6-0-0").status_code == 404
    # the same webhook at the link's own address is taken
    own = send_webhook(hook_url(stack, webhook_url), build_payload(drone.repo, build), SECRET)
    assert own.status_code == 202 and own.json()["result"] == "recorded", own.text
    assert admin.get(f"/apps/{linked}/services/web/versions/v6-0-0").status_code == 200


def test_a_build_of_another_repository_at_the_link_address_is_ignored(linked, admin, stack, drone, webhook_url):
    """Drone posts every repository's builds to each endpoint it has; a link acts on its own only."""
    build = drone.add_build(61, "success", "refs/tags/v6.1.0")
    resp = send_webhook(hook_url(stack, webhook_url), build_payload("team/somebody-else", build), SECRET)
    assert resp.status_code == 202 and resp.json()["result"] == "ignored", resp.text
    assert admin.get(f"/apps/{linked}/services/web/versions/v6-1-0").status_code == 404


def test_unlinking_retires_the_webhook_url(admin, stack, drone, clusters):
    app = "ci-un-" + uuid.uuid4().hex[:6]
    assert admin.post("/apps", json={"name": app}).status_code == 201
    assert admin.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    link = admin.put(f"/apps/{app}/services/web/ci", json={
        "provider": "drone", "server": drone.base_url, "repo": drone.repo, "token": TOKEN,
        "image": "registry.local/team/web", "webhook_secret": SECRET})
    assert link.status_code == 200, link.text
    assert admin.delete(f"/apps/{app}/services/web/ci").status_code == 204
    assert admin.get(f"/apps/{app}/services/web/ci").status_code == 404
    assert admin.delete(f"/apps/{app}/services/web/ci").status_code == 404
    build = drone.add_build(62, "success", "refs/tags/v6.2.0")
    gone = send_webhook(stack.url + link.json()["webhook_url"], build_payload(drone.repo, build), SECRET)
    assert gone.status_code == 401
    assert admin.get(f"/apps/{app}/services/web/versions").json()["items"] == []
