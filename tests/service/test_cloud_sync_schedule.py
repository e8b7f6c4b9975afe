"""Cloud accounts imported on a schedule: on two replicas of the server service sharing one
``FixedClock``, each period is synced exactly once (the row claim), against the local ECS
stand-in; the answer shows the schedule and how the last import went."""
from datetime import datetime

import eventlet
import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import replace_dependencies

from services.server.service import ServerService
from shared.clock import FixedClock
from shared.errors import Invalid, NotFound
from tests.service.test_server import KEY_ID, SECRET, clean_tables, ecs, run_on, server_config, wait_for_sync

__all__ = ["clean_tables", "ecs", "server_config"]  # fixtures used by name

PAGES_PER_SYNC = 5  # 5 instances in cn-hangzhou and 3 in cn-shanghai, 2 per page


def syncs_seen(ecs) -> int:
    return sum(1 for r in ecs.accepted_requests if r.query.get("PageNumber") == "1"
               and r.query.get("RegionId") == "cn-hangzhou")


@pytest.fixture
def replicas(container_factory, server_config):
    clock = FixedClock(datetime(2031, 3, 14, 9, 30))  # not today: the schedule follows the service's clock
    started = []
    for _ in range(2):
        container = container_factory(ServerService, server_config)
        replace_dependencies(container, clock=clock)
        container.start()
        started.append(container)
    return started, clock


def test_a_scheduled_account_is_synced_once_per_period_across_replicas(
        replicas, server_config, clean_tables, ecs):
    containers, clock = replicas
    with ServiceRpcProxy("server", server_config) as server:
        account = server.create_cloud_account({
            "name": "scheduled", "provider": "aliyun", "access_key_id": KEY_ID,
            "access_key_secret": SECRET, "regions": ["cn-hangzhou", "cn-shanghai"]})
        assert (account["sync_every_hours"], account["next_sync_at"]) == (None, None)
        for container in containers:  # no schedule: nothing happens
            run_on(container, "scheduled_cloud_syncs")
        assert syncs_seen(ecs) == 0

        scheduled = server.schedule_cloud_account(account["id"], {"sync_every_hours": 6})
        assert scheduled["sync_every_hours"] == 6
        assert scheduled["next_sync_at"] == "2031-03-14T09:30:00Z"  # never synced: due now

        def tick_everywhere():
            threads = [eventlet.spawn(run_on, c, "scheduled_cloud_syncs") for c in containers for _ in range(3)]
            for thread in threads:
                thread.wait()
            eventlet.sleep(0.5)  # a second sync would have started by now

        tick_everywhere()
        synced = wait_for_sync(server, account["id"])
        assert synced["last_sync_status"] == "ok" and synced["last_sync_count"] == 8, synced
        assert synced["last_sync_at"] == "2031-03-14T09:30:00Z"
        assert synced["next_sync_at"] == "2031-03-14T15:30:00Z"
        assert syncs_seen(ecs) == 1 and len(ecs.accepted_requests) == PAGES_PER_SYNC

        clock.advance(hours=5, minutes=59)        # not yet
        tick_everywhere()
        assert syncs_seen(ecs) == 1
        clock.advance(minutes=1)                   # the next period: once more, on one replica
        tick_everywhere()
        synced = wait_for_sync(server, account["id"])
        assert syncs_seen(ecs) == 2 and synced["next_sync_at"] == "2031-03-14T21:30:00Z"

        # a failing import is visible on the account and does not stop the schedule
        ecs.keys[KEY_ID] = "rotated-elsewhere"
        clock.advance(hours=6)
        tick_everywhere()
        failed = wait_for_sync(server, account["id"])
        assert failed["last_sync_status"] == "failed" and "Signature" in failed["last_sync_error"], failed
        assert failed["next_sync_at"] == "2031-03-15T03:30:00Z"

        # a longer period counts from the last import; off (null or 0) stops it
        assert server.schedule_cloud_account(account["id"], {"sync_every_hours": 24})["next_sync_at"] \
            == "2031-03-15T21:30:00Z"
        for off in (None, 0):
            stopped = server.schedule_cloud_account(account["id"], {"sync_every_hours": off})
            assert (stopped["sync_every_hours"], stopped["next_sync_at"]) == (None, None)
        clock.advance(days=30)
        seen = len(ecs.accepted_requests)
        tick_everywhere()
        assert len(ecs.accepted_requests) == seen


@pytest.mark.parametrize("body", [{"sync_every_hours": 169}, {"sync_every_hours": -1},
                                  {"sync_every_hours": 1.5}, {"sync_every_hours": "6"},
                                  {"sync_every_hours": True}, {}, {"regions": ["cn-beijing"]}])
def test_a_schedule_outside_1_to_168_hours_is_refused_naming_the_field(
        serve, server_config, clean_tables, body):
    server = serve(ServerService, server_config)
    account = server.create_cloud_account({"name": "bounds", "access_key_id": KEY_ID,
                                           "access_key_secret": SECRET, "regions": ["cn-hangzhou"]})
    with pytest.raises(Invalid) as refused:
        server.schedule_cloud_account(account["id"], body)
    assert refused.value.details["field"] in ("sync_every_hours", "regions")
    assert server.get_cloud_account(account["id"])["sync_every_hours"] is None
    with pytest.raises(NotFound):
        server.schedule_cloud_account(account["id"] + 1000, {"sync_every_hours": 2})


def test_the_schedule_bounds_are_a_week_and_an_hour(serve, server_config, clean_tables):
    server = serve(ServerService, server_config)
    account = server.create_cloud_account({"name": "edges", "access_key_id": KEY_ID,
                                           "access_key_secret": SECRET, "regions": ["cn-hangzhou"]})
    for hours in (1, 168):
        assert server.schedule_cloud_account(account["id"], {"sync_every_hours": hours})["sync_every_hours"] == hours
