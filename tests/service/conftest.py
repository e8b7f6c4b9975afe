"""The service layer's shared setup: a service started in a nameko container and reached
over RPC, tables emptied around a test, what a stand-in listener heard, and — for the
domain modules' tests on the same real MariaDB and Redis — a rolled-back session and
Redis keys of the test's own.

The first three are factory fixtures, so a module says only what differs (which service,
which config, which tables, which list); everything started is stopped after the test.
"""
from __future__ import annotations

import json
import uuid

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.keys import Keys


@pytest.fixture
def serve(container_factory):
    """``serve(Service, config, replicas=1)``: start the service (``replicas`` containers of
    it) and return an RPC proxy to it, closed after the test (before the containers stop)."""
    proxies = []

    def start(service_cls, config, replicas: int = 1):
        for _ in range(replicas):
            container_factory(service_cls, config).start()
        proxy = ServiceRpcProxy(service_cls.name, config)
        answer = proxy.start()
        proxies.append(proxy)
        return answer

    yield start
    for proxy in reversed(proxies):
        proxy.stop()


@pytest.fixture
def empty_tables(db_engine):
    """``empty_tables(*tables)``: delete every row of ``tables`` now and again after the
    test (services of several layers share the run's database)."""
    emptied: list[str] = []

    def empty(tables):
        with db_engine.begin() as conn:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))

    def start(*tables: str):
        emptied.extend(tables)
        empty(tables)

    yield start
    empty(emptied)


@pytest.fixture
def heard_on(config, redis_client):
    """``heard_on(name)``: a fresh Redis list ``<REDIS_PREFIX>:test:<name>`` for a stand-in
    service to push JSON onto, and a function reading back what it pushed so far."""

    def listen(name: str):
        key = f"{config['REDIS_PREFIX']}:test:{name}"
        redis_client.delete(key)
        return lambda: [json.loads(e) for e in redis_client.lrange(key, 0, -1)]

    return listen


@pytest.fixture
def db_session(db_engine):
    """A session on the run's database for a domain module's functions (they flush, the
    caller commits): nothing is committed, everything is rolled back after the test."""
    with Session(db_engine) as session:
        yield session
        session.rollback()


@pytest.fixture
def redis_keys(config, redis_client):
    """``shared.keys.Keys`` under a prefix of this test's own (inside the run's), every key
    under it deleted after the test."""
    keys = Keys(f"{config['REDIS_PREFIX']}:{uuid.uuid4().hex[:8]}")
    yield keys
    stale = list(redis_client.scan_iter(match=f"{keys.prefix}:*", count=500))
    if stale:
        redis_client.delete(*stale)
