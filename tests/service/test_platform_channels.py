"""The platform admins' channels in the notify service (app None): ``cluster.unreachable`` and
``server.expiring`` reach them only, an app's build events reach them when they ask, the URL
is sealed at rest and the audit entries never carry its token or the secret."""
import json

import pytest
from nameko.dependency_providers import Config
from nameko.standalone.events import event_dispatcher
from sqlalchemy import text

from shared.audit import AUDIT_SOURCE
from shared.errors import Invalid, NotFound
from shared.events import envelope, handle_event
from shared.redis import Redis
from tests.fakes.feishu import TOKEN, FakeFeishu
from tests.fakes.webhook import FakeWebhook
from tests.service.test_notify import SECRET, clean_tables, fakes, notify, wait_delivery
from tests.waiting import poller

__all__ = ["clean_tables", "fakes", "notify"]  # fixtures used by name
wait_for = poller(timeout=10.0, interval=0.05)


class AuditListener:
    name = "platform_audit_listener"
    redis = Redis()
    config = Config()

    @handle_event(AUDIT_SOURCE, "recorded")
    def on_audit(self, event):
        self.redis.rpush(f"{self.config['REDIS_PREFIX']}:test:platform-audit", json.dumps(event))


def unreachable(cluster="prod-2"):
    return envelope("cluster", "unreachable", {"cluster": cluster, "env": "prod", "server": "https://10.0.0.9:6443",
                                               "since": "2031-01-02T03:04:05Z", "error": "connection refused"})


def test_cluster_unreachable_reaches_the_platform_channel_only(notify, config, fakes):
    feishu, app_hook = fakes(FakeFeishu(secret=SECRET)), fakes(FakeWebhook())
    notify.create_channel(None, {"name": "admins", "type": "feishu", "url": feishu.url, "secret": SECRET,
                                 "events": ["cluster.unreachable", "server.expiring"]})
    notify.create_channel("shop", {"name": "team", "type": "webhook", "url": app_hook.url,
                                   "events": ["deploy.failed"]})
    with pytest.raises(Invalid) as refused:  # an app's channel cannot hear platform events
        notify.create_channel("shop", {"name": "x", "type": "webhook", "url": app_hook.url,
                                       "events": ["cluster.unreachable"]})
    assert refused.value.details["field"] == "events"
    event = unreachable()
    event_dispatcher(config)("cluster", "unreachable", event)
    [delivery] = wait_delivery(notify, None, event["event_id"])
    assert delivery["status"] == "delivered" and delivery["event"] == "cluster.unreachable"
    [request] = feishu.accepted_requests
    card = request.json()["card"]
    assert card["header"]["title"]["content"] == "Cluster prod-2 is unreachable"
    assert "connection refused" in json.dumps(card)
    assert app_hook.accepted_requests == [] and notify.list_deliveries("shop")["items"] == []


def test_a_platform_channel_hears_every_apps_builds_only_when_it_asks(notify, config, fakes):
    builds, quiet = fakes(FakeWebhook()), fakes(FakeWebhook())
    notify.create_channel(None, {"name": "builds", "type": "webhook", "url": builds.url,
                                 "events": ["build.failed"]})
    notify.create_channel(None, {"name": "quiet", "type": "webhook", "url": quiet.url,
                                 "events": ["server.expiring"]})
    for app in ("shop", "billing"):
        event = envelope("deploy", "build_failed", {"app": app, "service": "api", "ref": "v1", "image": None,
                                                    "build_number": 3, "status": "failed", "link": None,
                                                    "reason": "tests failed"})
        event_dispatcher(config)("deploy", "build_failed", event)
        wait_delivery(notify, None, event["event_id"])
    assert sorted(r.json()["data"]["app"] for r in builds.accepted_requests) == ["billing", "shop"]
    assert quiet.accepted_requests == []


def test_platform_channels_are_sealed_at_rest_audited_without_their_token_and_apart_from_apps(
        notify, config, fakes, db_engine, container_factory, heard_on):
    heard = heard_on("platform-audit")
    container_factory(AuditListener, config).start()
    feishu = fakes(FakeFeishu(secret=SECRET))
    created = notify.create_channel(None, {"name": "admins", "type": "feishu", "url": feishu.url,
                                           "secret": SECRET, "events": ["server.expiring"]},
                                    {"username": "root"}, "192.0.2.1")
    assert created["app"] is None and TOKEN not in json.dumps(created) and SECRET not in json.dumps(created)
    assert notify.get_channel(None, created["id"]) == created
    with db_engine.connect() as conn:
        url, secret = conn.execute(text("SELECT url, secret FROM notify_channels WHERE id = :i"),
                                   {"i": created["id"]}).one()
    assert TOKEN not in url and SECRET not in (secret or "") and not url.startswith("http")
    # an app's routes never reach it, nor it an app's
    for app in ("shop", "admins"):
        with pytest.raises(NotFound):
            notify.get_channel(app, created["id"])
        with pytest.raises(NotFound):
            notify.delete_channel(app, created["id"])
    notify.delete_channel(None, created["id"], {"username": "root"}, "192.0.2.1")
    assert notify.list_channels(None)["items"] == []
    entries = wait_for(heard, lambda found: len(found) >= 2)
    actions = {e["data"]["action"]: e["data"] for e in entries}
    assert set(actions) == {"channel_created", "channel_deleted"}
    for entry in actions.values():
        assert entry["target"] == f"platform/channel:{created['id']}" and entry["actor"] == "root"
        assert TOKEN not in json.dumps(entry) and SECRET not in json.dumps(entry)
    assert actions["channel_created"]["details"]["host"] == "127.0.0.1"
