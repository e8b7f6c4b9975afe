"""The fault wave on production's shape: a 3-node RabbitMQ cluster and a Redis primary with
a replica and three sentinels, all started by the test on this machine; 2 replicas of
every service (tests/faults/conftest.py's stack) reach them by a failover AMQP URI
(``amqp://n1;amqp://n2;amqp://n3``) and a ``redis+sentinel://`` URL.

While 50 deploys go on (tests/faults/wave.py), the test, mid-wave, in turn:

* SIGKILLs RabbitMQ node 1 — the first host of every process's AMQP URI, so every
  connection fails over — and never starts it again (its quorum queue members stay
  down: 2 of 3 is still a majority);
* SIGKILLs the Redis primary; the sentinels promote the replica, and every client
  follows (shared/redis.py);
* restarts node 2 (a clean stop and start), leaving node 3 alone meanwhile: the quorum
  queues have no majority until node 2 is back, so work waits and must resume.

Then everything wave.py checks must hold: every record final and matching kubectl, no
deploy, log line or notice lost or twice, ``/readyz`` green.

It starts a cluster (tens of seconds) and its own stack, so it runs in ``make test-faults``
only (the Makefile names this file: it is not ``test_*.py``, so ``make test``, which keeps
the single-broker wave of test_wave.py, does not collect it).
"""
from __future__ import annotations

import pytest

from tests.faults.faults import fail_redis_over, kill_broker_node, restart_broker_node
from tests.faults.infra import PrivateMariaDB, servers_running
from tests.faults.rabbit_cluster import RabbitCluster
from tests.faults.report import SUMMARY
from tests.faults.sentinel import RedisSentinelSet
from tests.faults.wave import Wave, create_apps, run_wave


@pytest.fixture(scope="module")
def private_servers(tmp_path_factory):
    """This module's servers, in place of conftest.py's single broker and Redis."""
    base = tmp_path_factory.mktemp("cluster-servers")
    rabbit = RabbitCluster(base)
    with servers_running(redis=RedisSentinelSet(base), rabbit=rabbit, mariadb=PrivateMariaDB(base)) as servers:
        SUMMARY.append(f"RabbitMQ cluster: 3 nodes started and joined in {rabbit.start_seconds:.1f} s")
        yield servers


def broker_node_and_redis_faults(wave: Wave) -> list:
    servers = wave.servers
    return [kill_broker_node(servers, 0, wave.driver), fail_redis_over(servers), restart_broker_node(servers, 1)]


@pytest.mark.timeout(1500)
def test_a_wave_survives_losing_a_broker_node_for_good_and_the_redis_primary(
        fault_stack, fault_admin, fault_clusters, private_servers):
    rabbit = private_servers["rabbit"]
    # What lets work outlive a node: every queue that holds it is replicated (shared/queues.py).
    work = {q: t for q, t in rabbit.queue_types().items() if q.startswith(("rpc-", "evt-", "deploy-", "parking-"))}
    assert work and {q for q, t in work.items() if t != "quorum"} == set(), work
    apps = create_apps(fault_admin, fault_clusters)
    wave = Wave(stack=fault_stack, api=fault_admin, servers=private_servers, clusters=fault_clusters, apps=apps,
                title="cluster fault wave")
    run_wave(wave, broker_node_and_redis_faults)
    assert [n.node for n in rabbit.killed] == [rabbit.nodes[0].node]
    assert rabbit.running_nodes() == {n.node for n in rabbit.nodes[1:]}
