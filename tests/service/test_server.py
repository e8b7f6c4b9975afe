"""The server service on real MariaDB/RabbitMQ, with the real Aliyun SDK talking to a local ECS stand-in."""
import json
import time
from datetime import date, datetime, timedelta, timezone

import eventlet
import eventlet.event
import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.extensions import Entrypoint
from nameko.testing.services import replace_dependencies
from nameko.testing.utils import get_extension
from sqlalchemy import text

from services.server.service import ServerService
from shared.clock import FixedClock
from shared.errors import Invalid, NotFound
from shared.events import handle_event
from tests.fakes.aliyun_ecs import FakeECS, instance

KEY_ID, SECRET = "LTAI5tFakeKeyId0001", "fake-secret-Zx81"
# Expiry years of the imported instances: from today's year, never a fixed calendar year.
Y1, Y2 = date.today().year + 4, date.today().year + 5


@pytest.fixture
def clean_tables(empty_tables):
    empty_tables("server_expiry_reminders", "server_servers", "server_cloud_accounts")


@pytest.fixture
def ecs():
    fake = FakeECS({KEY_ID: SECRET}, max_page_size=2).start()
    for i in range(5):
        fake.add("cn-hangzhou", instance(f"i-hz{i:03d}", "cn-hangzhou", name=f"hz-{i}",
                                         public_ip=f"47.96.0.{i + 10}", cpu=2, memory_mb=4096,
                                         expired_time=f"{Y1}-0{i + 1}-15T16:00Z"))
    for i in range(3):
        fake.add("cn-shanghai", instance(f"i-sh{i:03d}", "cn-shanghai", name=f"sh-{i}",
                                         private_ip=f"172.16.1.{i + 10}", cpu=4, memory_mb=8192,
                                         charge_type="PostPaid"))
    yield fake
    fake.stop()


@pytest.fixture
def server_config(config, ecs):
    return {**config, "ALIYUN_ECS_ENDPOINT": f"127.0.0.1:{ecs.port}", "ALIYUN_ECS_PROTOCOL": "http"}


def wait_for_sync(server, account_id, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        account = server.get_cloud_account(account_id)
        if account["last_sync_status"] not in ("syncing", "never"):
            return account
        eventlet.sleep(0.05)
    raise AssertionError(f"sync of account {account_id} did not finish: {account}")


def all_servers(server, **filters):
    items, cursor = [], None
    while True:
        page = server.list_servers(limit=3, cursor=cursor, **filters)
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_sync_imports_every_page_of_every_region_and_a_second_sync_keeps_notes(
        serve, server_config, clean_tables, ecs):
    server = serve(ServerService, server_config)
    account = server.create_cloud_account({
        "name": "team-aliyun", "provider": "aliyun", "access_key_id": KEY_ID,
        "access_key_secret": SECRET, "regions": ["cn-hangzhou", "cn-shanghai"]})
    assert server.sync_cloud_account(account["id"])["last_sync_status"] == "syncing"
    synced = wait_for_sync(server, account["id"])
    assert synced["last_sync_status"] == "ok", synced
    assert synced["last_sync_count"] == 8 and synced["last_sync_error"] is None

    servers = {s["instance_id"]: s for s in all_servers(server)}
    assert sorted(servers) == [f"i-hz{i:03d}" for i in range(5)] + [f"i-sh{i:03d}" for i in range(3)]
    hz0 = servers["i-hz000"]
    assert (hz0["name"], hz0["ip"], hz0["region"], hz0["cpu"], hz0["memory_gb"], hz0["provider"]) == \
        ("hz-0", "47.96.0.10", "cn-hangzhou", 2, 4.0, "aliyun")
    assert hz0["expires_at"] == f"{Y1}-01-15T16:00:00Z"
    sh1 = servers["i-sh001"]
    assert sh1["ip"] == "172.16.1.11" and sh1["expires_at"] is None  # pay-as-you-go
    # every page was asked for, region by region (page size 2 → 3 + 2 pages)
    pages = sorted((r.query["RegionId"], int(r.query["PageNumber"])) for r in ecs.accepted_requests)
    assert pages == [("cn-hangzhou", 1), ("cn-hangzhou", 2), ("cn-hangzhou", 3),
                     ("cn-shanghai", 1), ("cn-shanghai", 2)]

    server.update_server(hz0["id"], {"notes": "primary database", "owner": "alice"})
    ecs.regions["cn-hangzhou"][0].update({"InstanceName": "hz-0-renamed",
                                          "ExpiredTime": f"{Y2}-01-15T16:00Z"})
    server.sync_cloud_account(account["id"])
    assert wait_for_sync(server, account["id"])["last_sync_status"] == "ok"

    again = {s["instance_id"]: s for s in all_servers(server)}
    assert len(again) == 8 and len(all_servers(server)) == 8  # updated, not duplicated
    hz0 = again["i-hz000"]
    assert hz0["id"] == servers["i-hz000"]["id"]
    assert hz0["name"] == "hz-0-renamed" and hz0["expires_at"] == f"{Y2}-01-15T16:00:00Z"
    assert (hz0["notes"], hz0["owner"]) == ("primary database", "alice")

    listed = server.list_cloud_accounts()
    assert SECRET not in json.dumps(listed) and SECRET not in json.dumps(account)
    assert all("access_key_secret" not in a for a in listed["items"])


@pytest.mark.parametrize("key_id, secret, code", [
    (KEY_ID, "not-the-secret", "SignatureDoesNotMatch"),
    ("LTAI5tUnknownKey", SECRET, "InvalidAccessKeyId.NotFound"),
])
def test_sync_with_bad_keys_shows_the_providers_error_on_the_account(
        serve, server_config, clean_tables, ecs, key_id, secret, code):
    server = serve(ServerService, server_config)
    account = server.create_cloud_account({
        "name": "bad-keys", "provider": "aliyun", "access_key_id": key_id,
        "access_key_secret": secret, "regions": ["cn-hangzhou"]})
    server.sync_cloud_account(account["id"])
    synced = wait_for_sync(server, account["id"])
    assert synced["last_sync_status"] == "failed"
    assert code in synced["last_sync_error"]
    assert synced["last_sync_at"] is not None
    assert server.list_servers()["items"] == []
    assert len(ecs.received) == 1  # a refusal is not retried; it will not change by waiting


def test_sync_that_times_out_is_retried_then_recorded(serve, server_config, clean_tables, ecs):
    ecs.hang_next(10, seconds=2.0)  # CLOUD_TIMEOUT_SECONDS is 1 in tests
    server = serve(ServerService, server_config)
    account = server.create_cloud_account({
        "name": "slow", "access_key_id": KEY_ID, "access_key_secret": SECRET,
        "regions": ["cn-hangzhou"]})
    server.sync_cloud_account(account["id"])
    synced = wait_for_sync(server, account["id"])
    assert synced["last_sync_status"] == "failed"
    assert "timed out" in synced["last_sync_error"].lower()
    assert len(ecs.received) == server_config["CLOUD_ATTEMPTS"]


def test_servers_crud_search_paging_and_validation(serve, config, clean_tables):
    server = serve(ServerService, config)
    made = [server.create_server({"name": f"web-{i}", "ip": f"10.0.0.{i}", "owner": "bob",
                                  "expires_at": (date.today() + timedelta(days=i * 10)).isoformat()})
            for i in range(5)]
    assert made[0]["provider"] == "manual" and made[0]["ip"] == "10.0.0.0"
    first = server.list_servers(limit=2)
    assert [s["name"] for s in first["items"]] == ["web-0", "web-1"] and first["next_cursor"]
    second = server.list_servers(limit=2, cursor=first["next_cursor"])
    assert [s["name"] for s in second["items"]] == ["web-2", "web-3"]
    assert [s["name"] for s in server.list_servers(q="web-4")["items"]] == ["web-4"]
    soon = server.list_servers(expiring_within_days=15)["items"]
    assert [s["name"] for s in soon] == ["web-0", "web-1"]

    changed = server.update_server(made[1]["id"], {"notes": "renew by card", "cpu": 8})
    assert changed["notes"] == "renew by card" and changed["cpu"] == 8 and changed["name"] == "web-1"
    assert server.get_server(made[1]["id"])["cpu"] == 8

    for bad, field in [({"name": "x", "ip": "999.1.1.1"}, "ip"), ({"ip": "10.0.0.9"}, "name"),
                       ({"name": "x", "ip": "10.0.0.9", "cpu": -1}, "cpu"),
                       ({"name": "x", "ip": "10.0.0.9", "expires_at": "soon"}, "expires_at"),
                       ({"name": "x", "ip": "10.0.0.9", "colour": "red"}, "colour")]:
        with pytest.raises(Invalid) as caught:
            server.create_server(bad)
        assert caught.value.details["field"] == field
    with pytest.raises(Invalid) as caught:
        server.list_servers(limit=500)
    assert caught.value.details["field"] == "limit"

    server.delete_server(made[0]["id"])
    with pytest.raises(NotFound):
        server.get_server(made[0]["id"])


def run_on(container, method, *args):
    """Run one worker of ``method`` on this very container and return its own result.

    (nameko's ``entrypoint_hook`` answers with whichever worker of the method
    finishes first, which mixes results up when workers run concurrently.)
    """
    done = eventlet.event.Event()

    def handle_result(worker_ctx, result=None, exc_info=None):
        done.send((result, exc_info))
        return result, exc_info

    entrypoint = get_extension(container, Entrypoint, method_name=method)
    container.spawn_worker(entrypoint, args, {}, handle_result=handle_result)
    result, exc_info = done.wait()
    if exc_info is not None:
        raise exc_info[1]
    return result


class ExpiringListener:
    name = "expiring_listener"
    seen: list = []

    @handle_event("server", "expiring")
    def on_expiring(self, event):
        ExpiringListener.seen.append(event)


def test_expiry_scan_on_two_replicas_sends_one_reminder_per_server_per_day(
        container_factory, config, clean_tables, db_engine):
    ExpiringListener.seen = []
    listener = container_factory(ExpiringListener, config)
    listener.start()
    replicas = [container_factory(ServerService, config) for _ in range(2)]
    for replica in replicas:
        replica.start()
    today = date.today() + timedelta(days=400)  # the scan is run as of that day
    with ServiceRpcProxy("server", config) as server:
        ids = {}
        for name, days in [("in-30", 30), ("in-7", 7), ("in-1", 1), ("in-5", 5),
                           ("in-90", 90), ("gone", -2)]:
            ids[name] = server.create_server({
                "name": name, "ip": "10.1.0.1", "owner": "ops",
                "expires_at": f"{(today + timedelta(days=days)).isoformat()}T08:00:00Z"})["id"]

    # both replicas scan at the same moment, three times each
    threads = [eventlet.spawn(run_on, r, "scan_expiring", today.isoformat())
               for r in replicas for _ in range(3)]
    results = [t.wait() for t in threads]
    sent = [item for result in results for item in result["sent"]]
    assert sorted(s["name"] for s in sent) == ["gone", "in-1", "in-30", "in-5", "in-7"]

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(ExpiringListener.seen) < 5:
        eventlet.sleep(0.05)
    eventlet.sleep(0.3)  # a duplicate would arrive now
    events = ExpiringListener.seen
    assert sorted(e["data"]["name"] for e in events) == ["gone", "in-1", "in-30", "in-5", "in-7"]
    by_name = {e["data"]["name"]: e for e in events}
    assert by_name["in-7"]["type"] == "server.expiring" and by_name["in-7"]["source"] == "server"
    assert by_name["in-7"]["data"] == {
        "server_id": ids["in-7"], "name": "in-7", "ip": "10.1.0.1", "provider": "manual",
        "expires_at": f"{(today + timedelta(days=7)).isoformat()}T08:00:00Z", "days_left": 7,
        "expired": False, "owner": "ops"}
    # the one already expired is reminded once, as expired
    assert by_name["gone"]["data"]["days_left"] == -2 and by_name["gone"]["data"]["expired"] is True
    with db_engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM server_expiry_reminders")).scalar() == 5

    # the next day nothing new (each is inside the threshold it was reminded for) ...
    assert run_on(replicas[0], "scan_expiring", (today + timedelta(days=1)).isoformat())["sent"] == []
    # ... and 6 days later "in-7" reaches its 1-day threshold while "in-1" and "in-5" have
    # expired since: each is reminded once more, as expired
    later = run_on(replicas[1], "scan_expiring", (today + timedelta(days=6)).isoformat())["sent"]
    assert sorted((s["name"], s["days_left"], s["expired"]) for s in later) == [
        ("in-1", -5, True), ("in-5", -1, True), ("in-7", 1, False)]


@pytest.mark.parametrize("years", [-3, 5], ids=["clock-3-years-ago", "clock-5-years-ahead"])
def test_expiry_filter_and_daily_scan_follow_the_services_clock(
        container_factory, config, clean_tables, years):
    """The inventory's "expiring within N days" and the daily reminder scan read the
    service's clock, not the machine's date: set it years back or ahead and they answer
    as they would on that day. Already expired servers are in the filter, marked."""
    ExpiringListener.seen = []
    listener = container_factory(ExpiringListener, config)
    listener.start()
    start = datetime.now(timezone.utc).replace(tzinfo=None, hour=10, minute=0, second=0, microsecond=0)
    clock = FixedClock(start.replace(year=start.year + years, day=min(start.day, 28)))
    container = container_factory(ServerService, {**config, "SERVER_EXPIRY_SCAN_AT": "09:00",
                                                  "SERVER_EXPIRY_SCAN_ENABLED": True})
    replace_dependencies(container, clock=clock)
    container.start()
    day = clock.now().date()

    def at(days):
        return f"{(day + timedelta(days=days)).isoformat()}T12:00:00Z"

    with ServiceRpcProxy("server", config) as server:
        ids = {name: server.create_server({"name": name, "ip": "10.2.0.1", "expires_at": when})["id"]
               for name, when in [("in-3", at(3)), ("in-40", at(40)), ("gone", at(-2)),
                                  ("today", at(0)), ("never", None)]}
        listed = {s["name"]: s for s in all_servers(server, expiring_within_days=30)}
        assert sorted(listed) == ["gone", "in-3", "today"]
        assert (listed["gone"]["expired"], listed["gone"]["days_left"]) == (True, -2)
        assert (listed["in-3"]["expired"], listed["in-3"]["days_left"]) == (False, 3)
        # 12:00 today has not come at 10:00: expires today, not yet expired
        assert (listed["today"]["expired"], listed["today"]["days_left"]) == (False, 0)
        assert [s["name"] for s in all_servers(server, expiring_within_days=0)] == ["gone", "today"]
        assert sorted(s["name"] for s in all_servers(server, expiring_within_days=40)) == [
            "gone", "in-3", "in-40", "today"]
        far = server.get_server(ids["in-40"])
        assert (far["expired"], far["days_left"]) == (False, 40)
        assert server.get_server(ids["never"])["days_left"] is None

        def scan_and_collect():
            before = len(ExpiringListener.seen)
            run_on(container, "daily_expiry_scan")
            eventlet.sleep(0.3)
            return sorted((e["data"]["name"], e["data"]["days_left"], e["data"]["expired"])
                          for e in ExpiringListener.seen[before:])

        deadline = time.monotonic() + 10
        run_on(container, "daily_expiry_scan")     # 10:00, past today's 09:00 scan time
        while time.monotonic() < deadline and len(ExpiringListener.seen) < 3:
            eventlet.sleep(0.05)
        eventlet.sleep(0.3)
        assert sorted((e["data"]["name"], e["data"]["days_left"], e["data"]["expired"])
                      for e in ExpiringListener.seen) == [
            ("gone", -2, True), ("in-3", 3, False), ("today", 0, False)]
        assert scan_and_collect() == []            # the same day again: nothing new

        clock.advance(days=1, hours=-2)             # 08:00 the next day: before the scan time
        assert scan_and_collect() == []
        clock.advance(hours=2)                      # 10:00: "today" has now expired
        assert scan_and_collect() == [("today", -1, True)]
        assert server.get_server(ids["today"])["expired"] is True
        clock.advance(days=1)                       # in-3 reaches its 1-day threshold
        assert scan_and_collect() == [("in-3", 1, False)]
        clock.advance(days=2)                       # ... and then expires, reminded once more
        assert scan_and_collect() == [("in-3", -1, True)]
        clock.advance(days=1)
        assert scan_and_collect() == []
        # renewing starts the reminders afresh, and takes it out of the filter
        server.update_server(ids["in-3"], {"expires_at": at(10)})
        assert "in-3" not in {s["name"] for s in all_servers(server, expiring_within_days=3)}
        assert scan_and_collect() == [("in-3", 5, False)]


def test_a_large_account_imports_250_instances_over_pages_in_two_regions_and_resyncs_idempotently(
        serve, config, clean_tables):
    """The issue's acceptance figure: 250 instances, ECS's page size of 100 (3 pages in
    the larger region), two regions; a second sync changes nothing, a changed expiry updates."""
    fake = FakeECS({KEY_ID: SECRET}).start()
    try:
        for i in range(200):
            fake.add("cn-hangzhou", instance(f"i-big{i:04d}", "cn-hangzhou", name=f"big-{i}",
                                             public_ip=f"47.97.{i // 250}.{i % 250}",
                                             expired_time=f"{Y1}-06-01T16:00Z"))
        for i in range(50):
            fake.add("cn-beijing", instance(f"i-bj{i:04d}", "cn-beijing", name=f"bj-{i}",
                                            private_ip=f"10.1.0.{i + 1}", expired_time=f"{Y1}-06-01T16:00Z"))
        cfg = {**config, "ALIYUN_ECS_ENDPOINT": f"127.0.0.1:{fake.port}", "ALIYUN_ECS_PROTOCOL": "http"}
        server = serve(ServerService, cfg)
        account = server.create_cloud_account({
            "name": "big-aliyun", "provider": "aliyun", "access_key_id": KEY_ID,
            "access_key_secret": SECRET, "regions": ["cn-hangzhou", "cn-beijing"]})
        server.sync_cloud_account(account["id"])
        first = wait_for_sync(server, account["id"], timeout=60)
        assert first["last_sync_status"] == "ok" and first["last_sync_count"] == 250
        pages = sorted((r.query["RegionId"], int(r.query["PageNumber"])) for r in fake.accepted_requests)
        assert pages == [("cn-beijing", 1), ("cn-hangzhou", 1), ("cn-hangzhou", 2)]  # 3 pages, 2 regions
        before = {s["instance_id"]: s for s in server.list_servers(limit=200)["items"]}
        before.update({s["instance_id"]: s for s in server.list_servers(
            limit=200, cursor=server.list_servers(limit=200)["next_cursor"])["items"]})
        assert len(before) == 250

        fake.regions["cn-beijing"][7]["ExpiredTime"] = f"{Y2}-02-01T16:00Z"
        server.sync_cloud_account(account["id"])
        assert wait_for_sync(server, account["id"], timeout=60)["last_sync_status"] == "ok"
        after = {s["instance_id"]: s for s in server.list_servers(limit=200)["items"]}
        after.update({s["instance_id"]: s for s in server.list_servers(
            limit=200, cursor=server.list_servers(limit=200)["next_cursor"])["items"]})
        assert len(after) == 250
        changed = {k for k in after if after[k]["expires_at"] != before[k]["expires_at"]}
        assert changed == {"i-bj0007"}
        assert after["i-bj0007"]["expires_at"] == f"{Y2}-02-01T16:00:00Z"
        assert {k: v["id"] for k, v in after.items()} == {k: v["id"] for k, v in before.items()}
    finally:
        fake.stop()
