"""Log lines through the bus, batched at the producer (``services.cluster.logship``) and
stored with multi-row INSERTs by the deploy service — on real MariaDB/RabbitMQ.

The producer is a small service named ``cluster`` with the cluster service's own
``LogShipper`` and outbox; the consumer is the real deploy service.
"""
import time
import uuid

import eventlet
import pytest
from nameko.dependency_providers import Config
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import select, text

from services.cluster.logship import LogShipper
from services.deploy.service import DeployService
from shared import outbox
from shared.db import Database
from shared.events import EventPublisher
from shared.service import rpc
from tests.service.broker_faults import lose_first_publish
from tests.service.stand_ins import event_recorder
from tests.waiting import poller


class ApplyingCluster:
    """Writes log lines the way the cluster service's applies do."""

    name = "cluster"
    db = Database()
    config = Config()
    events = EventPublisher()  # its outbox relay is the one the shipper relies on
    log_lines = LogShipper()

    @rpc
    def apply(self, record_id, tag, lines):
        for i in range(lines):
            self.log_lines.add(record_id, "test-1", "info", f"{tag} line {i}")
            eventlet.sleep(0)  # other applies run meanwhile, as they do while waiting for an API server
        self.log_lines.flush()
        self.events.publish("apply_result", {"record_id": record_id, "tag": tag})
        return lines


LogListener = event_recorder("log_listener", "cluster", "log", into="logs")


@pytest.fixture
def heard(heard_on):
    return heard_on("logs")


@pytest.fixture
def producer(container_factory, config):
    container_factory(LogListener, config).start()
    container_factory(DeployService, config).start()
    container = container_factory(ApplyingCluster, {**config, "OUTBOX_RELAY_SECONDS": 0.3})
    container.start()
    return container


def stored(db_engine, record_id):
    with db_engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT line FROM deploy_log_lines WHERE record_id = :r ORDER BY id"),
                                           {"r": record_id})]

wait_for = poller(timeout=20.0, interval=0.05)


def test_lines_of_concurrent_applies_travel_merged_and_are_stored_once(producer, config, db_engine, heard):
    record_id = int(time.time() * 1000) % 10**9
    applies = 20

    def apply(n):
        with ServiceRpcProxy("cluster", config) as cluster:
            return cluster.apply(record_id, f"a{n}", 15)
    pool = eventlet.GreenPool(applies)
    assert sum(pool.imap(apply, range(applies))) == applies * 15
    rows = wait_for(lambda: stored(db_engine, record_id), lambda r: len(r) >= applies * 15)
    eventlet.sleep(0.5)
    rows = stored(db_engine, record_id)
    assert sorted(rows) == sorted(f"a{n} line {i}" for n in range(applies) for i in range(15))
    events = [e for e in heard() if e["data"]["lines"][0]["record_id"] == record_id]
    assert sum(len(e["data"]["lines"]) for e in events) == applies * 15
    assert len(events) < applies  # merged across applies, not one event per apply (let alone per line)
    for event in events:
        assert all(line["line_id"] and line["cluster"] == "test-1" for line in event["data"]["lines"])
    table = outbox.model_for("cluster").__table__
    with db_engine.connect() as conn:
        assert conn.execute(select(table.c.event_id)).all() == []  # shipped lines leave no outbox row


def test_lines_whose_shipping_failed_are_relayed_from_the_outbox_and_stored_once(
        producer, config, db_engine, heard, monkeypatch):
    shipper = next(d for d in producer.dependencies if isinstance(d, LogShipper))
    calls = lose_first_publish(shipper, monkeypatch)
    record_id = int(time.time() * 1000) % 10**9 + 1
    with ServiceRpcProxy("cluster", config) as cluster:
        assert cluster.apply(record_id, "lost", 30) == 30
    # Nothing shipped: the staged event waits in the outbox, then the relay sends it as it was staged.
    rows = wait_for(lambda: stored(db_engine, record_id), lambda r: len(r) >= 30)
    assert calls["n"] >= 1
    # The merged event is sent too, late (a publish that did go out although its outbox row
    # stayed): the same line ids, nothing stored twice.
    def relayed():
        return [e for e in heard() if e["data"]["lines"][0]["record_id"] == record_id]
    [staged] = wait_for(relayed, lambda events: events)  # the listener hears it on its own queue
    again = {**staged, "event_id": uuid.uuid4().hex}
    shipper.publisher.publish(again, exchange=shipper.exchange, routing_key="log")
    eventlet.sleep(1.0)
    rows = stored(db_engine, record_id)
    assert sorted(rows) == sorted(f"lost line {i}" for i in range(30))
