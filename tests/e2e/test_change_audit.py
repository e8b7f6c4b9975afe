"""Changes of CI links and notification channels are in the audit log (SECURITY.md: every
change of state, with actor, target and source address) — and no secret, token or bot URL
is in an entry."""
import uuid

import pytest

from tests.fakes.drone import FakeDrone
from tests.waiting import waiter

wait_for = waiter(timeout=30.0, interval=0.3)
TOKEN = "drone-token-" + uuid.uuid4().hex
SECRET = "hook-secret-" + uuid.uuid4().hex
BOT_TOKEN = uuid.uuid4().hex


@pytest.fixture(scope="module")
def drone():
    with FakeDrone(TOKEN, repo="team/audit-" + uuid.uuid4().hex[:4]) as fake:
        yield fake


def entries(admin, actor, wanted):
    """The actor's audit entries, once every action in ``wanted`` is there."""
    def found():
        items = admin.get("/admin/audit", params={"actor": actor, "limit": 200}).json()["items"]
        return items if wanted <= {e["action"] for e in items} else None
    return wait_for(found, what=f"audit entries {sorted(wanted)} of {actor}")


def test_ci_link_and_channel_changes_are_audited_without_secrets(login, admin, drone):
    name = f"auditor-{uuid.uuid4().hex[:6]}"
    user = login(name)
    app = f"audit-{uuid.uuid4().hex[:6]}"
    assert user.post("/apps", json={"name": app}).status_code == 201
    assert user.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    body = {"provider": "drone", "server": drone.base_url, "repo": drone.repo, "token": TOKEN,
            "image": "registry.local/team/web", "webhook_secret": SECRET}
    link = user.put(f"/apps/{app}/services/web/ci", json=body)
    assert link.status_code == 200, link.text
    changed = user.put(f"/apps/{app}/services/web/ci", json={**body, "token": TOKEN + "-2",
                                                             "auto_deploy_env": "test"})
    assert changed.status_code == 200 and changed.json()["id"] == link.json()["id"], changed.text
    assert user.delete(f"/apps/{app}/services/web/ci").status_code == 204
    # a service deleted with its link: the link goes too, audited
    assert user.post(f"/apps/{app}/services", json={"name": "api"}).status_code == 201
    assert user.put(f"/apps/{app}/services/api/ci", json=body).status_code == 200
    assert user.delete(f"/apps/{app}/services/api").status_code == 204
    assert user.post(f"/apps/{app}/services", json={"name": "api"}).status_code == 201
    assert user.get(f"/apps/{app}/services/api/ci").status_code == 404

    bot_url = f"http://127.0.0.1:9/open-apis/bot/v2/hook/{BOT_TOKEN}"
    channel = user.post(f"/apps/{app}/channels", json={
        "name": "team bot", "type": "feishu", "url": bot_url, "secret": SECRET + "-bot",
        "events": ["deploy.failed"]})
    assert channel.status_code == 201, channel.text
    channel_id = channel.json()["id"]
    assert user.delete(f"/apps/{app}/channels/{channel_id}").status_code == 204

    items = entries(admin, name, {"ci_linked", "ci_link_changed", "ci_unlinked", "channel_created",
                                  "channel_deleted"})
    by_action = {}
    for entry in reversed(items):   # oldest first
        by_action.setdefault(entry["action"], []).append(entry)
        assert entry["actor"] == name and entry["source_ip"], entry
    linked, = by_action["ci_linked"][:1]
    assert linked["target"] == f"app:{app}/service:web"
    assert linked["details"]["repo"] == drone.repo and linked["details"]["link_id"] == link.json()["id"]
    change, = by_action["ci_link_changed"]
    assert change["target"] == f"app:{app}/service:web" and "auto_deploy_env" in change["details"]["changed"]
    assert {e["target"] for e in by_action["ci_unlinked"]} == {f"app:{app}/service:web", f"app:{app}/service:api"}
    created, = by_action["channel_created"]
    deleted, = by_action["channel_deleted"]
    assert created["target"] == deleted["target"] == f"app:{app}/channel:{channel_id}"
    assert created["details"]["type"] == "feishu" and created["details"]["has_secret"] is True
    text = admin.get("/admin/audit", params={"actor": name, "limit": 200}).text
    for secret in (TOKEN, SECRET, BOT_TOKEN, BOT_TOKEN[:8], "/open-apis/bot"):
        assert secret not in text, secret
