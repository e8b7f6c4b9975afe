"""The notify service on real MariaDB/RabbitMQ: events in, signed Feishu/DingTalk/webhook requests out to local stand-ins."""
import json
import time

import eventlet
import pytest
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import text

from services.deploy import schemas as deploy_schemas
from services.notify.service import NotifyService
from shared.errors import Invalid, NotFound, Unavailable
from shared.events import envelope
from shared.migrate import upgrade
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.feishu import FakeFeishu
from tests.fakes.webhook import FakeWebhook
from tests.migrated import database_at

SECRET = "SECf3b1-channel-secret-7d2a"


@pytest.fixture
def clean_tables(empty_tables):
    empty_tables("notify_deliveries", "notify_channels")


@pytest.fixture
def notify(serve, config, clean_tables):
    return serve(NotifyService, config)


@pytest.fixture
def fakes():
    started = []

    def start(fake):
        started.append(fake.start())
        return fake
    yield start
    for fake in started:
        fake.stop()


def deploy_failed(app="shop", **overrides):
    data = {"record_id": 4711, "app": app, "service": "api", "version": "v1.2.3", "action": "deploy",
            "status": "failed", "reason": "ImagePullBackOff on prod-1",
            "targets": [{"cluster": "prod-1", "env": "prod", "status": "failed",
                         "reason": "ImagePullBackOff", "message": "image registry/api:v1.2.3 not found"}],
            "created_by": "alice"}
    data.update(overrides)
    return envelope("deploy", "failed", data)


def wait_delivery(notify, app, event_id, timeout=10.0, done=("delivered", "failed")):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = [d for d in notify.list_deliveries(app)["items"] if d["event_id"] == event_id]
        if items and all(d["status"] in done for d in items):
            return items
        eventlet.sleep(0.05)
    raise AssertionError(f"no finished delivery for {event_id}: {notify.list_deliveries(app)}")


def test_deploy_failed_reaches_feishu_as_a_signed_card(notify, config, fakes):
    feishu = fakes(FakeFeishu(secret=SECRET))
    channel = notify.create_channel("shop", {"name": "ops group", "type": "feishu", "url": feishu.url,
                                             "secret": SECRET, "events": ["deploy.failed"]})
    event = deploy_failed()
    event_dispatcher(config)("deploy", "failed", event)
    [delivery] = wait_delivery(notify, "shop", event["event_id"])
    assert (delivery["status"], delivery["attempts"], delivery["channel_id"]) == ("delivered", 1, channel["id"])
    [request] = feishu.accepted_requests          # the stand-in checked the signature
    body = request.json()
    assert set(body) >= {"timestamp", "sign", "msg_type", "card"} and body["msg_type"] == "interactive"
    card = json.dumps(body["card"], ensure_ascii=False)
    for expected in ("shop", "api", "v1.2.3", "prod-1", "ImagePullBackOff", "failed",
                     "http://127.0.0.1:8080/#/records/4711"):
        assert expected in card
    assert body["card"]["header"]["template"] == "red"


def test_deploy_failed_reaches_dingtalk_as_signed_markdown(notify, config, fakes):
    dingtalk = fakes(FakeDingTalk(secret=SECRET))
    notify.create_channel("shop", {"name": "dd", "type": "dingtalk", "url": dingtalk.url,
                                   "secret": SECRET, "events": ["deploy.failed", "deploy.succeeded"]})
    event = deploy_failed()
    event_dispatcher(config)("deploy", "failed", event)
    [delivery] = wait_delivery(notify, "shop", event["event_id"])
    assert delivery["status"] == "delivered"
    [request] = dingtalk.accepted_requests
    assert {"timestamp", "sign", "access_token"} <= set(request.query)
    assert "%2B" in request.raw_query or "%2F" in request.raw_query or "%3D" in request.raw_query  # URL-encoded once
    body = request.json()
    assert body["msgtype"] == "markdown"
    for expected in ("shop", "api", "v1.2.3", "prod-1", "ImagePullBackOff", "/#/records/4711"):
        assert expected in body["markdown"]["text"]


def test_generic_webhook_gets_json_with_a_valid_hmac(notify, config, fakes):
    hook = fakes(FakeWebhook(secret=SECRET))
    notify.create_channel("shop", {"name": "hook", "type": "webhook", "url": hook.url,
                                   "secret": SECRET, "events": ["build.succeeded"]})
    event = envelope("deploy", deploy_schemas.BUILD_SUCCEEDED, deploy_schemas.build_finished(
        app="shop", service="api", ref="v1.2.4", image="registry/api:v1.2.4", build_number=88,
        status="succeeded", link="https://ci.example/88", reason=None))
    event_dispatcher(config)("deploy", "build_succeeded", event)
    [delivery] = wait_delivery(notify, "shop", event["event_id"])
    assert delivery["status"] == "delivered" and delivery["event"] == "build.succeeded"
    [request] = hook.accepted_requests
    assert request.headers["x-mae-event"] == "build.succeeded"
    assert request.headers["x-mae-delivery"] == event["event_id"]
    assert request.headers["x-mae-signature"].startswith("sha256=")
    body = request.json()
    assert body["data"]["image"] == "registry/api:v1.2.4" and body["event"] == "build.succeeded"


def test_a_channel_failing_twice_then_accepting_is_delivered_on_the_third_attempt(notify, config, fakes):
    feishu = fakes(FakeFeishu(secret=SECRET))
    feishu.fail_next(1, status=503, body={"error": "bad gateway"})
    feishu.fail_next(1, status=200, body={"code": 11232, "msg": "frequency limited", "data": {}})
    notify.create_channel("shop", {"name": "flaky", "type": "feishu", "url": feishu.url,
                                   "secret": SECRET, "events": ["deploy.failed"]})
    event = deploy_failed()
    event_dispatcher(config)("deploy", "failed", event)
    [delivery] = wait_delivery(notify, "shop", event["event_id"])
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 3)
    assert len(feishu.received) == 3 and len(feishu.accepted_requests) == 1
    assert delivery["delivered_at"] is not None


def test_a_channel_that_always_fails_ends_failed_with_its_last_error(notify, config, fakes):
    dingtalk = fakes(FakeDingTalk(secret="a-different-secret"))  # every request is refused: 310000
    notify.create_channel("shop", {"name": "wrong secret", "type": "dingtalk", "url": dingtalk.url,
                                   "secret": SECRET, "events": ["deploy.failed"]})
    event = deploy_failed()
    event_dispatcher(config)("deploy", "failed", event)
    [delivery] = wait_delivery(notify, "shop", event["event_id"])
    assert delivery["status"] == "failed"
    assert delivery["attempts"] == config["NOTIFY_ATTEMPTS"] == len(dingtalk.received)
    assert "310000" in delivery["last_error"] and "sign not match" in delivery["last_error"]


def test_a_hanging_channel_times_out_and_fails(notify, config, fakes):
    hook = fakes(FakeWebhook())
    hook.hang_next(10, seconds=1.5)  # NOTIFY_TIMEOUT_SECONDS is 1 in tests
    notify.create_channel("shop", {"name": "slow", "type": "webhook", "url": hook.url,
                                   "events": ["deploy.failed"]})
    event = deploy_failed()
    event_dispatcher(config)("deploy", "failed", event)
    [delivery] = wait_delivery(notify, "shop", event["event_id"], timeout=15)
    assert delivery["status"] == "failed" and "no answer within 1 s" in delivery["last_error"]


def test_the_same_event_twice_is_delivered_once(notify, config, fakes):
    hook = fakes(FakeWebhook(secret=SECRET))
    notify.create_channel("shop", {"name": "hook", "type": "webhook", "url": hook.url,
                                   "secret": SECRET, "events": ["deploy.failed"]})
    event = deploy_failed()
    dispatch = event_dispatcher(config)
    dispatch("deploy", "failed", event)
    dispatch("deploy", "failed", event)
    wait_delivery(notify, "shop", event["event_id"])
    eventlet.sleep(0.5)  # give the second copy its chance
    assert len(hook.received) == 1
    assert len([d for d in notify.list_deliveries("shop")["items"] if d["event_id"] == event["event_id"]]) == 1


def test_only_subscribed_channels_of_the_events_app_are_notified(notify, config, fakes):
    hook_shop, hook_other = fakes(FakeWebhook()), fakes(FakeWebhook())
    notify.create_channel("shop", {"name": "succeeded only", "type": "webhook", "url": hook_shop.url,
                                   "events": ["deploy.succeeded"]})
    notify.create_channel("other", {"name": "other app", "type": "webhook", "url": hook_other.url,
                                    "events": ["deploy.failed"]})
    event = deploy_failed()
    event_dispatcher(config)("deploy", "failed", event)
    eventlet.sleep(1.0)
    assert hook_shop.received == [] and hook_other.received == []
    assert notify.list_deliveries("shop")["items"] == []


def test_server_expiring_goes_to_the_platform_channel_only(notify, config, fakes):
    platform, app_hook = fakes(FakeWebhook(secret=SECRET)), fakes(FakeWebhook())
    notify.create_channel(None, {"name": "admins", "type": "webhook", "url": platform.url,
                                 "secret": SECRET, "events": ["server.expiring"]})
    with pytest.raises(Invalid) as caught:
        notify.create_channel("shop", {"name": "x", "type": "webhook", "url": app_hook.url,
                                       "events": ["server.expiring"]})
    assert caught.value.details["field"] == "events"
    event = envelope("server", "expiring", {"server_id": 7, "name": "db-1", "ip": "10.0.0.7",
                                            "provider": "aliyun", "expires_at": "2033-03-17T08:00:00Z",
                                            "days_left": 7, "owner": "ops"})
    event_dispatcher(config)("server", "expiring", event)
    [delivery] = wait_delivery(notify, None, event["event_id"])
    assert delivery["status"] == "delivered" and delivery["app"] is None
    [request] = platform.accepted_requests
    assert request.json()["data"]["name"] == "db-1" and "expires in 7 days" in request.json()["title"]


def test_send_test_reports_acceptance_or_the_providers_refusal(notify, fakes):
    good, bad = fakes(FakeFeishu(secret=SECRET)), fakes(FakeFeishu(secret="other"))
    ok = notify.create_channel("shop", {"name": "good", "type": "feishu", "url": good.url,
                                        "secret": SECRET, "events": ["deploy.failed"]})
    refused = notify.create_channel("shop", {"name": "bad", "type": "feishu", "url": bad.url,
                                             "secret": SECRET, "events": ["deploy.failed"]})
    assert notify.send_test("shop", ok["id"])["ok"] is True
    assert len(good.accepted_requests) == 1
    with pytest.raises(Unavailable) as caught:
        notify.send_test("shop", refused["id"])
    assert "19021" in caught.value.message and "sign match fail" in caught.value.message
    with pytest.raises(NotFound):
        notify.send_test("other-app", ok["id"])  # another app's channel is invisible


def test_channel_crud_never_returns_the_secret(notify, config, fakes):
    dingtalk = fakes(FakeDingTalk(secret=SECRET))
    created = notify.create_channel("shop", {"name": "dd", "type": "dingtalk", "url": dingtalk.url,
                                             "secret": SECRET, "events": ["deploy.failed"]})
    listed = notify.list_channels("shop")
    event = deploy_failed()
    event_dispatcher(config)("deploy", "failed", event)
    wait_delivery(notify, "shop", event["event_id"])
    answers = json.dumps([created, listed, notify.list_deliveries("shop")])
    assert SECRET not in answers
    assert dingtalk.url.split("access_token=")[1] not in answers  # the bot's token is masked too
    assert created["has_secret"] is True and [c["id"] for c in listed["items"]] == [created["id"]]
    for bad, field in [({"name": "x", "type": "slack", "url": "https://x", "events": ["deploy.failed"]}, "type"),
                       ({"name": "x", "type": "webhook", "url": "ftp://x", "events": ["deploy.failed"]}, "url"),
                       ({"name": "x", "type": "webhook", "url": "https://x", "events": ["deploy.maybe"]}, "events")]:
        with pytest.raises(Invalid) as caught:
            notify.create_channel("shop", bad)
        assert caught.value.details["field"] == field
    with pytest.raises(NotFound):
        notify.delete_channel("other-app", created["id"])
    notify.delete_channel("shop", created["id"])
    assert notify.list_channels("shop")["items"] == []


def test_two_notify_replicas_deliver_a_redelivered_event_once(serve, config, clean_tables, fakes):
    """Both replicas consume the same queue; the event arrives twice (as after a redelivery)
    and each copy may land on a different replica at the same moment: one delivery."""
    notify = serve(NotifyService, config, replicas=2)
    hook = fakes(FakeWebhook(secret=SECRET))
    notify.create_channel("shop", {"name": "hook", "type": "webhook", "url": hook.url,
                                   "secret": SECRET, "events": ["deploy.failed"]})
    event = deploy_failed()
    dispatch = event_dispatcher(config)
    for _ in range(4):
        dispatch("deploy", "failed", event)
    wait_delivery(notify, "shop", event["event_id"])
    eventlet.sleep(1.0)  # let every copy reach a replica
    assert len(hook.received) == 1
    assert len([d for d in notify.list_deliveries("shop")["items"] if d["event_id"] == event["event_id"]]) == 1


def test_a_channel_url_is_sealed_at_rest_and_still_reaches_the_bot(notify, config, fakes, db_engine):
    """A bot's webhook URL is its credential: the table holds it sealed, answers mask it."""
    from tests.fakes.dingtalk import ACCESS_TOKEN

    dingtalk = fakes(FakeDingTalk(secret=SECRET))
    channel = notify.create_channel("shop", {"name": "dd", "type": "dingtalk", "url": dingtalk.url,
                                             "secret": SECRET, "events": ["deploy.failed"]})
    with db_engine.connect() as conn:
        url, masked = conn.execute(text("SELECT url, url_masked FROM notify_channels WHERE id = :id"),
                                   {"id": channel["id"]}).one()
    assert ACCESS_TOKEN not in url and "127.0.0.1" not in url and url.startswith("v1.")
    assert ACCESS_TOKEN not in masked and masked == channel["url"]
    assert ACCESS_TOKEN not in json.dumps(notify.list_channels("shop"))

    event = deploy_failed()
    event_dispatcher(config)("deploy", "failed", event)
    [delivery] = wait_delivery(notify, "shop", event["event_id"])
    assert delivery["status"] == "delivered" and len(dingtalk.accepted_requests) == 1


def test_a_plain_url_left_by_an_older_version_is_sealed_by_the_migration_and_delivers(
        infra, container_factory, config, fakes, monkeypatch):
    from tests.fakes.dingtalk import ACCESS_TOKEN

    dingtalk = fakes(FakeDingTalk())  # a robot without signing: the row has no sealed secret
    with database_at(infra, "0008", "m0024") as (url, engine):
        with engine.begin() as conn:  # a row as written before migration 0008: URL in plain
            conn.execute(text("INSERT INTO notify_channels (app, name, type, url, events, enabled, created_at) "
                              "VALUES ('shop', 'old', 'dingtalk', :url, '[\"deploy.failed\"]', 1, NOW())"),
                         {"url": dingtalk.url})
        monkeypatch.setenv("MAE_SECRET_KEY", config["SECRET_KEY"])   # as the migration Job has it
        upgrade(url)
        with engine.connect() as conn:
            sealed, masked = conn.execute(text("SELECT url, url_masked FROM notify_channels WHERE name = 'old'")).one()
        assert ACCESS_TOKEN not in sealed and sealed.startswith("v1.") and ACCESS_TOKEN not in masked
        service = container_factory(NotifyService, {**config, "DB_URL": url})
        service.start()
        with ServiceRpcProxy("notify", config) as notify:
            event = deploy_failed()
            event_dispatcher(config)("deploy", "failed", event)
            [delivery] = wait_delivery(notify, "shop", event["event_id"])
        service.stop()   # before its database is dropped
    assert delivery["status"] == "delivered" and len(dingtalk.accepted_requests) == 1


def test_a_retry_waits_without_holding_a_worker(serve, config, clean_tables, fakes):
    """The pause before a retry is a row's due time, not a sleeping worker: with one worker slot
    and a 3 s pause, the service answers at once while the delivery waits, then retries it."""
    notify = serve(NotifyService, {**config, "max_workers": 1, "NOTIFY_RETRY_BASE": 3, "NOTIFY_RETRY_CAP": 3})
    hook = fakes(FakeWebhook())
    hook.fail_next(1, status=503)
    notify.create_channel("shop", {"name": "flaky", "type": "webhook", "url": hook.url,
                                   "events": ["deploy.failed"]})
    event = deploy_failed()
    event_dispatcher(config)("deploy", "failed", event)
    [waiting] = wait_delivery(notify, "shop", event["event_id"], done=("retrying",))
    assert waiting["attempts"] == 1 and "503" in waiting["last_error"]
    started = time.monotonic()
    assert notify.list_channels("shop")["items"]  # the one worker is free
    assert time.monotonic() - started < 1.0
    [delivery] = wait_delivery(notify, "shop", event["event_id"], timeout=15)
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 2)
    assert len(hook.received) == 2
