"""``REDIS_URL=redis+sentinel://...``: MAE's Redis client finds the primary through the
sentinels and follows a failover (real processes: one primary, one replica, three
sentinels on localhost; tests/faults/sentinel.py)."""
from __future__ import annotations

import time

import pytest
import redis

from shared.redis import make_client
from tests.faults.sentinel import RedisSentinelSet, write_until_it_works
from tests.waiting import waiter

wait_for = waiter(timeout=30, interval=0.2)

# down-after 1 s, then the sentinels' vote and the promotion: a few seconds; 30 s is the bound.
FAILOVER_BOUND = 30


@pytest.fixture
def sentinels(tmp_path):
    group = RedisSentinelSet(tmp_path)
    try:
        group.start()
        yield group
    finally:
        group.stop()


@pytest.mark.timeout(180)
def test_writes_work_again_after_the_primary_is_killed(sentinels):
    client = make_client(sentinels.url)
    first = sentinels.primary_port()
    assert client.set("before", "1") and client.get("before") == "1"
    assert client.connection_pool.connection_kwargs.get("port") is None  # asked the sentinels, not configured
    client.wait(1, 5000)  # the replica has it before the primary dies

    killed = sentinels.kill_primary()
    assert killed == first
    took = write_until_it_works(client, "after", FAILOVER_BOUND)
    assert sentinels.primary_port() != first
    # The same client, now on the promoted replica: what was written before is still there.
    assert client.get("before") == "1" and client.get("after") == "after"
    assert client.incr("counter") == 1
    print(f"writes worked again {took:.1f} s after the primary was killed")

    # The old primary comes back as a replica; a second failover goes back to it.
    sentinels.rejoin(killed)
    old = redis.Redis(port=killed, decode_responses=True)
    wait_for(lambda: old.info("replication").get("master_link_status") == "up", 30, what="the rejoined replica to sync")
    wait_for(sentinels.sentinels_agree, 30, what="the sentinels to see the rejoined replica")
    client.wait(1, 5000)
    sentinels.kill_primary()
    write_until_it_works(client, "again", FAILOVER_BOUND)
    assert sentinels.primary_port() == killed
    assert client.get("before") == "1" and client.get("after") == "after"


def test_a_client_without_a_reachable_sentinel_fails_fast_with_a_connection_error():
    client = make_client("redis+sentinel://127.0.0.1:9,127.0.0.1:10/mae/0")
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        client.set("x", "1")
    assert time.monotonic() - started < 30
