"""The fault suite's stack: 2 replicas of every service on private servers it may break.

Like the e2e stack (tests/e2e/conftest.py) it is `make up`'s ``Stack`` on free
ports, but its RabbitMQ, Redis and MariaDB are the suite's own (tests/faults/infra.py),
so restarting them disturbs nobody else on the machine. Servers and stack are per test
module: cluster_wave.py brings its own ``private_servers`` (a RabbitMQ cluster, a Redis
behind sentinels), and one wave's stack is gone before the next one starts.
"""
from __future__ import annotations

import time

import pytest
import requests

from scripts.stack import ROOT, Stack
from tests.faults.infra import (OPERATOR_OPTS, SANDBOX_OPTS, PrivateMariaDB, PrivateRabbit, PrivateRedis, free_port,
                               servers_running)


class Api:
    """A thin HTTP client for the gateway; ``call`` retries what a person would retry."""

    def __init__(self, base: str, token: str):
        self.base = base.rstrip("/") + "/api/v1"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        # Answers that were neither what was asked for nor a 503: an outage must show as
        # "unavailable, try again" (503), never as an internal error (500).
        self.unexpected: list[str] = []

    def request(self, method, path, **kwargs):
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.base + path, **kwargs)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def call(self, method, path, expect, timeout=180.0, **kwargs):
        """Send until the answer is one of ``expect`` (a 503 or a dropped connection
        during an outage is retried, as a person or a CI job would)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                resp = self.request(method, path, **kwargs)
            except requests.RequestException as exc:
                last = repr(exc)
            else:
                if resp.status_code in expect:
                    return resp
                # 409 to a request with an Idempotency-Key: its first sending is still being recorded.
                twin = resp.status_code == 409 and "Idempotency-Key" in kwargs.get("headers", {})
                if resp.status_code < 500 and resp.status_code not in (401, 408, 429) and not twin:
                    raise AssertionError(f"{method} {path}: {resp.status_code} {resp.text[:300]}")
                last = f"{resp.status_code} {resp.text[:200]}"
                if resp.status_code != 503 and not twin:
                    self.unexpected.append(f"{method} {path}: {last}")
            time.sleep(1.0)
        raise AssertionError(f"{method} {path} never answered {expect} within {timeout:g} s; last: {last}")


@pytest.fixture(scope="module")
def private_servers(tmp_path_factory):
    base = tmp_path_factory.mktemp("fault-servers")
    with servers_running(redis=PrivateRedis(base), rabbit=PrivateRabbit(base), mariadb=PrivateMariaDB(base)) as servers:
        yield servers


@pytest.fixture(scope="module")
def fault_stack(private_servers, tmp_path_factory):
    from shared.secretbox import generate_key

    servers = private_servers
    stack = Stack(
        run_dir=tmp_path_factory.mktemp("fault-stack"),
        config=ROOT / "config" / "test.yaml",
        replicas=2,
        env={"DB_URL": servers["mariadb"].url, "AMQP_URI": servers["rabbit"].url,
             "REDIS_URL": servers["redis"].url, "REDIS_PREFIX": "mae-faults",
             # The waves run what production runs (config/test.yaml's default is classic).
             "AMQP_QUEUE_TYPE": "quorum",
             "MAE_SECRET_KEY": generate_key(), "HEALTH_TIMEOUT": "2", "LOG_LEVEL": "WARNING",
             "ALIYUN_ECS_ENDPOINT": "127.0.0.1:9", "CLUSTER_TEND_SECONDS": "2",
             # A busy 2-core machine under faults: give the cluster service time to answer
             # before an apply is asked again (production waits 30 s).
             "DEPLOY_APPLY_TIMEOUT_SECONDS": "15"},
        gateway_port=free_port(),
        port_offset=free_port() % 500 + 2000,
        localauth_port=0,
    )
    stack.start_all()
    try:
        stack.wait_ready(120)
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="module")
def fault_admin(fault_stack):
    from scripts.stack import admin_token

    token, _ = admin_token(fault_stack)
    return Api(fault_stack.url, token)


@pytest.fixture(scope="module")
def fault_clusters(fault_stack, fault_admin):
    started = fault_stack.start_clusters(
        fault_admin.session.headers["Authorization"].split()[1],
        clusters=[("test", "test", free_port()), ("prod", "prod", free_port())],
        sandbox_opts=SANDBOX_OPTS, operator_opts=OPERATOR_OPTS)
    return started
