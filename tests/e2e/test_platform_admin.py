"""The platform admins' odds and ends through the gateway: their own notification channels,
cloud accounts imported on a schedule, and a cluster's credentials and report token rotated
without registering it again — each admin-only, audited, and checked with kubectl after."""
import json
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.e2e.test_servers_and_channels import team
from tests.fakes.feishu import TOKEN, FakeFeishu
from tests.fakes.webhook import FakeWebhook
from tests.kube import kubectl_json
from tests.waiting import poller

__all__ = ["team"]  # a fixture used by name
wait_for = poller(timeout=45.0, interval=0.3)


@pytest.fixture(scope="module")
def people(team):
    """The team of test_servers_and_channels: an app's owner is no platform admin."""
    return {**team, "user": team["outsider"]}


def audit(admin, action, target):
    entries = admin.get("/admin/audit", params={"action": action}).json()["items"]
    return [e for e in entries if e["target"] == target]


# -- the platform admins' channels --------------------------------------------------------

def test_platform_channels_are_for_admins_only_and_hear_platform_events(people, api):
    admin, owner, user, app = people["admin"], people["owner"], people["user"], people["app"]
    secret = "admins-secret-" + uuid.uuid4().hex
    with FakeFeishu(secret=secret) as feishu:
        body = {"name": "platform admins", "type": "feishu", "url": feishu.url, "secret": secret,
                "events": ["server.expiring", "cluster.unreachable", "build.failed"]}
        assert api.post("/admin/channels", json=body).status_code == 401
        for stranger in (owner, user):  # an app's owner is no platform admin
            assert stranger.post("/admin/channels", json=body).status_code == 403
            assert stranger.get("/admin/channels").status_code == 403
            assert stranger.get("/admin/deliveries").status_code == 403
        created = admin.post("/admin/channels", json=body)
        assert created.status_code == 201, created.text
        channel = created.json()
        assert channel["app"] is None and channel["events"] == sorted(body["events"])
        assert secret not in created.text and TOKEN not in created.text
        for stranger in (owner, user):
            assert stranger.get(f"/admin/channels/{channel['id']}").status_code == 403
            assert stranger.delete(f"/admin/channels/{channel['id']}").status_code == 403
            assert stranger.post(f"/admin/channels/{channel['id']}/test").status_code == 403
        # an app's routes never reach a platform channel, nor may an app hear platform events
        assert owner.delete(f"/apps/{app}/channels/{channel['id']}").status_code == 404
        assert owner.get(f"/apps/{app}/channels").json()["items"] == []
        refused = owner.post(f"/apps/{app}/channels", json={**body, "events": ["server.expiring"]})
        assert refused.status_code == 422 and refused.json()["error"]["details"]["field"] == "events"

        listed = admin.get("/admin/channels")
        assert listed.status_code == 200 and secret not in listed.text and TOKEN not in listed.text
        assert channel["id"] in [c["id"] for c in listed.json()["items"]]
        assert admin.get(f"/admin/channels/{channel['id']}").json()["name"] == "platform admins"
        tested = admin.post(f"/admin/channels/{channel['id']}/test")
        assert tested.status_code == 200, tested.text
        assert feishu.wait_for(1)  # arrived, its signature checked out
        bad = admin.post("/admin/channels", json={**body, "events": ["server.exploding"]})
        assert bad.status_code == 422
        assert admin.delete(f"/admin/channels/{channel['id']}").status_code == 204
        assert admin.get(f"/admin/channels/{channel['id']}").status_code == 404

    target = f"platform/channel:{channel['id']}"
    entries = wait_for(lambda: audit(admin, "channel_created", target) + audit(admin, "channel_deleted", target),
                       lambda found: len(found) == 2)
    for entry in entries:
        assert secret not in json.dumps(entry) and TOKEN not in json.dumps(entry)
        assert entry["details"]["host"] == "127.0.0.1"


# -- cloud accounts on a schedule ---------------------------------------------------------

def test_a_cloud_account_is_imported_on_its_schedule_and_the_result_is_visible(people):
    admin, user = people["admin"], people["user"]
    created = admin.post("/cloud-accounts", json={
        "name": "scheduled-" + uuid.uuid4().hex[:4], "access_key_id": "LTAI-sched",
        "access_key_secret": "sched-secret", "regions": ["cn-hangzhou"]})
    assert created.status_code == 201, created.text
    account = created.json()
    assert account["sync_every_hours"] is None and account["last_sync_status"] == "never"
    path = f"/cloud-accounts/{account['id']}"
    assert user.patch(path, json={"sync_every_hours": 1}).status_code == 403
    assert user.get(path).status_code == 403
    for bad in (169, -1, 1.5, "6", True):
        resp = admin.patch(path, json={"sync_every_hours": bad})
        assert resp.status_code == 422, (bad, resp.text)
    assert admin.patch("/cloud-accounts/999999", json={"sync_every_hours": 2}).status_code == 404
    scheduled = admin.patch(path, json={"sync_every_hours": 1})
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["sync_every_hours"] == 1 and scheduled.json()["next_sync_at"]
    # never imported: due at once; the server service's timer imports it (this stack's ECS
    # endpoint answers nothing, so the import fails, visibly)
    synced = wait_for(lambda: admin.get(path).json(), lambda a: a["last_sync_status"] == "failed",
                      timeout=75)
    assert synced["last_sync_error"] and synced["next_sync_at"] > scheduled.json()["next_sync_at"]
    assert "sched-secret" not in json.dumps(synced)
    off = admin.patch(path, json={"sync_every_hours": None}).json()
    assert (off["sync_every_hours"], off["next_sync_at"]) == (None, None)
    assert audit(admin, "cloud_account_scheduled", f"cloud_account:{account['id']}")


# -- cluster credentials and report token -------------------------------------------------

@pytest.fixture
def spare(stack, admin):
    """A sandbox cluster of this test's own, registered with MAE (no operator: the test
    posts reports as one would); forgotten and stopped afterwards."""
    name = "rot-" + uuid.uuid4().hex[:5]
    info = stack.start_sandbox(name, 0, ready_delay=0.2)
    body = {"name": name, "env": "test", "server": info["url"], "token": info["token"],
            "ca_cert": Path(info["ca_path"]).read_text()}
    resp = admin.post("/clusters", json=body)
    assert resp.status_code == 201, resp.text
    yield {**info, "name": name, "report_token": resp.json()["report_token"], "body": body,
           "kubeconfig": str(stack.sandbox_dir(name) / "kubeconfig")}
    admin.delete(f"/clusters/{name}")
    stack.stop(f"sandbox-{name}")


def post_reports(stack, name, token):
    return requests.post(f"{stack.url}/api/v1/clusters/{name}/reports", json={"reports": []},
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_cluster_credentials_are_rotated_only_when_they_work(spare, people, stack):
    admin, user, name = people["admin"], people["user"], spare["name"]
    good = {"server": spare["url"], "ca_cert": spare["body"]["ca_cert"], "token": spare["token"]}
    assert user.post(f"/clusters/{name}/credentials", json=good).status_code == 403
    assert admin.post("/clusters/no-such/credentials", json=good).status_code == 404
    assert admin.post(f"/clusters/{name.upper()}/credentials", json=good).status_code == 404
    before = admin.get(f"/clusters/{name}").json()
    refused = admin.post(f"/clusters/{name}/credentials", json={**good, "token": "stolen-or-stale"})
    assert refused.status_code == 422 and "Unauthorized" in refused.json()["error"]["message"]
    assert admin.post(f"/clusters/{name}/credentials", json={"server": spare["url"]}).status_code == 422
    assert admin.get(f"/clusters/{name}").json()["credentials_generation"] == before["credentials_generation"]

    rotated = admin.post(f"/clusters/{name}/credentials", json={"token": spare["token"]})
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["credentials_generation"] == before["credentials_generation"] + 1
    assert spare["token"] not in rotated.text
    # MAE acts on the cluster with what it holds now: a new app's namespace appears there
    app = "rotns-" + uuid.uuid4().hex[:5]
    assert people["owner"].post("/apps", json={"name": app}).status_code == 201
    ns = wait_for(lambda: kubectl_json("get", "namespace", app, kubeconfig=spare["kubeconfig"], timeout=30),
                  lambda found: found is not None)
    assert ns["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "mae"
    [entry] = audit(admin, "cluster_credentials_rotated", f"cluster:{name}")
    assert spare["token"] not in json.dumps(entry) and entry["actor"] == "admin"
    assert people["owner"].delete(f"/apps/{app}").status_code in (200, 202, 204)


def test_a_new_report_token_takes_over_while_the_old_one_works_for_ten_minutes(spare, people, stack):
    admin, user, name, first = people["admin"], people["user"], spare["name"], spare["report_token"]
    assert post_reports(stack, name, first).status_code == 202
    assert user.post(f"/clusters/{name}/report-token").status_code == 403
    assert admin.post("/clusters/no-such/report-token").status_code == 404
    assert admin.post(f"/clusters/{name.upper()}/report-token").status_code == 404  # never another case's row
    resp = admin.post(f"/clusters/{name}/report-token")
    assert resp.status_code == 200, resp.text
    second = resp.json()["report_token"]
    assert second != first and second.startswith("mae_r_")
    until = resp.json()["previous_valid_until"]
    left = time.mktime(time.strptime(until, "%Y-%m-%dT%H:%M:%SZ")) - time.mktime(time.gmtime())
    assert 540 <= left <= 610, until  # ten minutes
    assert post_reports(stack, name, second).status_code == 202
    assert post_reports(stack, name, first).status_code == 202      # still, for the overlap
    assert post_reports(stack, "test", second).status_code == 401   # a cluster's token is its own
    third = admin.post(f"/clusters/{name}/report-token").json()["report_token"]
    assert post_reports(stack, name, first).status_code == 401      # two rotations ago: gone
    assert post_reports(stack, name, third).status_code == 202
    assert second not in admin.get(f"/clusters/{name}").text
    assert len(audit(admin, "cluster_report_token_rotated", f"cluster:{name}")) == 2


def test_a_cluster_that_goes_away_is_announced_on_the_platform_channel_once(spare, people, stack):
    """The whole path: the cluster service's probes fail for CLUSTER_UNREACHABLE_SECONDS (10 in config/test.yaml),
    cluster.unreachable leaves once, notify delivers it to the admins' signed webhook."""
    admin, name = people["admin"], spare["name"]
    secret = "hook-" + uuid.uuid4().hex
    with FakeWebhook(secret=secret) as hook:
        created = admin.post("/admin/channels", json={"name": "outages", "type": "webhook", "url": hook.url,
                                                      "secret": secret, "events": ["cluster.unreachable"]})
        assert created.status_code == 201, created.text
        try:
            stack.stop(f"sandbox-{name}")  # the cluster goes away
            [request] = hook.wait_for(1, timeout=120)
            body = request.json()
            assert body["event"] == "cluster.unreachable" and body["data"]["cluster"] == name
            assert body["data"]["server"] == spare["url"] and body["data"]["since"]
            assert body["title"] == f"Cluster {name} is unreachable"
            detail = admin.get(f"/clusters/{name}").json()
            assert detail["reachable"] is False and detail["unreachable_since"] == body["data"]["since"]
            time.sleep(5)  # more failed probes: still one notice for this outage
            assert len([r for r in hook.accepted_requests if r.json()["data"]["cluster"] == name]) == 1
            delivered = admin.get("/admin/deliveries").json()["items"]
            assert any(d["event"] == "cluster.unreachable" and d["status"] == "delivered" for d in delivered)
        finally:
            admin.delete(f"/admin/channels/{created.json()['id']}")
