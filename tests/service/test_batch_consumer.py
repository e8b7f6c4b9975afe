"""The deploy service's batch consumers through a database outage (services/deploy/batching.py).

The real deploy service reaches the real MariaDB through a TCP proxy the test cuts for
26 s — open connections dropped, new ones refused, as when the server goes away —
while log lines keep arriving. A batch that fails is retried, not lost; once the
database is back, what this replica holds flows within the retry cap (5 s), not after
the half minute an exponential backoff had grown to; every line is stored once.
"""
import time
import uuid

import eventlet
import pytest
from nameko.standalone.events import event_dispatcher
from sqlalchemy import text
from sqlalchemy.engine import make_url

from services.deploy import batching
from services.deploy.service import DeployService
from shared.events import envelope, now_rfc3339
from tests.tcp_proxy import Proxy

OUTAGE_SECONDS = 26


@pytest.fixture
def deploy_behind_a_proxy(container_factory, config):
    url = make_url(config["DB_URL"])
    proxy = Proxy(url.port or 3306)
    container = container_factory(DeployService, {**config, "DB_URL": url.set(port=proxy.port).render_as_string(
        hide_password=False)})
    container.start()
    yield proxy
    proxy.cut()


def stored(db_engine, record_ids) -> int:
    with db_engine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM deploy_log_lines WHERE record_id BETWEEN :a AND :b"),
                            {"a": min(record_ids), "b": max(record_ids)}).scalar()


def test_lines_held_through_a_database_outage_flow_within_seconds_of_its_end(
        deploy_behind_a_proxy, config, db_engine):
    proxy = deploy_behind_a_proxy
    dispatch = event_dispatcher(config)
    base = int(uuid.uuid4().int % 10 ** 9) * 1000
    sent: list[int] = []

    def send(record_id):
        lines = [{"record_id": record_id, "cluster": "test-1", "level": "info", "line": f"line {i}",
                  "time": now_rfc3339(), "line_id": f"{uuid.uuid4().hex}:{i}"} for i in range(3)]
        dispatch("cluster", "log", envelope("cluster", "log", {"lines": lines}))
        sent.append(record_id)

    send(base)
    deadline = time.monotonic() + 15
    while stored(db_engine, [base]) < 3 and time.monotonic() < deadline:
        eventlet.sleep(0.1)
    assert stored(db_engine, [base]) == 3, "the consumer did not store lines before the outage"

    proxy.cut()
    cut_at = time.monotonic()
    n = 1
    while time.monotonic() - cut_at < OUTAGE_SECONDS:
        send(base + n)
        n += 1
        eventlet.sleep(1.0)
    assert stored(db_engine, sent) == 3  # nothing got through meanwhile: the outage was real
    proxy.restore()
    back_at = time.monotonic()
    while stored(db_engine, sent) < 3 * len(sent) and time.monotonic() - back_at < 60:
        eventlet.sleep(0.1)
    took = time.monotonic() - back_at
    assert stored(db_engine, sent) == 3 * len(sent), "lines lost in the outage"
    # Within the 5 s retry cap and some slack (the old backoff, capped at 30 s, waited up to 25.6 s).
    assert batching.MAX_HANDLER_RETRY_DELAY <= 5
    assert took <= 9, f"lines flowed {took:.1f} s after the database returned"
    with db_engine.connect() as conn:
        distinct = conn.execute(text("SELECT COUNT(DISTINCT line_id) FROM deploy_log_lines "
                                     "WHERE record_id BETWEEN :a AND :b"), {"a": min(sent), "b": max(sent)}).scalar()
    assert distinct == 3 * len(sent)
