"""The faults the waves inject (tests/faults/test_wave.py, cluster_wave.py): each is
``(name, fault)``, a name for the report and a function that does it and returns once
the broken thing is back (or, for the ones for good, once it is gone)."""
from __future__ import annotations

import random
import signal
import time


def kill_replica(stack, name, driver=None):
    def fault():
        if driver is not None:
            # Right after a deploy was accepted: its apply requests, apply results, status
            # reports and notices are in flight, so the kill most likely lands mid-work.
            driver.allowed = max(driver.allowed, len(driver.accepted) + 1)
            driver.next_accept(timeout=20)
            time.sleep(random.uniform(0.0, 0.15))
        stack.stop(f"{name}-0", signal.SIGKILL)
        time.sleep(1.0)  # the supervisor's restart delay
        stack.start(name, 0)
    return f"kill -9 {name}-0", fault


def restart_rabbitmq(servers):
    return "restart RabbitMQ", servers["rabbit"].restart


def mariadb_outage(servers, seconds=30):
    def fault():
        servers["mariadb"].stop()
        time.sleep(seconds)
        servers["mariadb"].start()
    return f"MariaDB unavailable {seconds} s", fault


def restart_redis(servers, seconds=5):
    def fault():
        servers["redis"].stop()  # SHUTDOWN NOSAVE: every lock, cache and limit is gone
        time.sleep(seconds)
        servers["redis"].start()
    return f"restart Redis (down {seconds} s, keys lost)", fault


def restart_operators(stack):
    from tests.faults.infra import OPERATOR_OPTS

    def fault():
        for name in ("test", "prod"):
            stack.stop(f"operator-{name}", signal.SIGKILL)
        time.sleep(1.0)
        for name in ("test", "prod"):
            stack.start_operator(name, **OPERATOR_OPTS)
    return "restart both operators", fault


def restart_sandbox(stack, clusters, name="test", seconds=3):
    from tests.faults.infra import SANDBOX_OPTS

    def fault():
        # The API server restarts; the cluster's state (etcd's, here the snapshot) survives.
        # An apply that comes meanwhile may fail, visibly ("could not be reached"), by design.
        stack.stop(f"sandbox-{name}", signal.SIGTERM)
        time.sleep(seconds)
        stack.start_sandbox(name, clusters[name]["port"], **SANDBOX_OPTS)
    return f"restart sandbox {name} (down {seconds} s)", fault


def kill_broker_node(servers, index=0, driver=None):
    """SIGKILL one node of the RabbitMQ cluster for good (by default the first of the AMQP
    URI's hosts: the one every process connected to first)."""
    def fault():
        if driver is not None:
            driver.allowed = max(driver.allowed, len(driver.accepted) + 1)
            driver.next_accept(timeout=20)
        servers["rabbit"].kill(index)
    return f"kill -9 RabbitMQ node {index + 1} (for good)", fault


def restart_broker_node(servers, index):
    """A clean stop and start of one node; it rejoins from its own data."""
    return f"restart RabbitMQ node {index + 1}", lambda: servers["rabbit"].restart(index)


def fail_redis_over(servers, bound=60):
    """SIGKILL the Redis primary; the sentinels promote the replica (tests/faults/sentinel.py)."""
    def fault():
        group = servers["redis"]
        old = group.kill_primary()
        group.wait_failover(old, bound)
    return "kill -9 the Redis primary (sentinels fail over)", fault
