"""A wave of 50 deploys across two sandbox clusters while everything MAE stands on breaks.

The stack runs 2 replicas of every service on the suite's own RabbitMQ, Redis and
MariaDB (conftest.py). While the driver deploys (tests/faults/wave.py), the test, between
deploys, in turn:

* kills (SIGKILL) a replica of deploy, cluster, gateway and notify, and starts it
  again as a supervisor would;
* restarts RabbitMQ, makes MariaDB unavailable for 30 s, restarts Redis;
* restarts both operators and the ``test`` sandbox (its API server).

Afterwards, with no help, everything wave.py checks holds: every record final and
matching kubectl, every log line and every notice there exactly once, ``/readyz`` green.
The same wave on a 3-node RabbitMQ cluster and a Redis behind sentinels, losing a broker
node for good and the Redis primary, is tests/faults/cluster_wave.py (``make test-faults``).
"""
from __future__ import annotations

import pytest

from tests.faults.faults import (kill_replica, mariadb_outage, restart_operators, restart_rabbitmq, restart_redis,
                                 restart_sandbox)
from tests.faults.wave import Wave, create_apps, run_wave


def every_fault(wave: Wave) -> list:
    stack, servers, driver = wave.stack, wave.servers, wave.driver
    return [kill_replica(stack, "deploy", driver), kill_replica(stack, "cluster", driver),
            kill_replica(stack, "gateway", driver), kill_replica(stack, "notify", driver),
            restart_rabbitmq(servers), mariadb_outage(servers), restart_redis(servers),
            restart_operators(stack), restart_sandbox(stack, wave.clusters)]


@pytest.mark.timeout(900)
def test_a_wave_of_deploys_survives_every_fault(fault_stack, fault_admin, fault_clusters, private_servers):
    apps = create_apps(fault_admin, fault_clusters)
    run_wave(Wave(stack=fault_stack, api=fault_admin, servers=private_servers, clusters=fault_clusters,
                  apps=apps), every_fault)
