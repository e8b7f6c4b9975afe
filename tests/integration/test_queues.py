"""MAE's RabbitMQ queues on the real broker (shared/queues.py): quorum work queues with a
delivery limit and a parking queue, exclusive reply queues, ``scripts.redrive``, and
publishes the broker cannot route kept in the outbox until a queue exists for them.

Each test runs on a vhost of its own, so what one declares cannot meet another's.
"""
from __future__ import annotations

import io
import json
import subprocess
import uuid

import eventlet
import pytest
from kombu import Connection, Exchange, Queue
from nameko.amqp.publish import UndeliverableMessage
from nameko.dependency_providers import Config
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import select

from scripts.redrive import redrive
from shared import batching, outbox, queues
from shared.batching import batch_handler
from shared.db import Database
from shared.errors import Unavailable
from shared.events import EventPublisher, envelope, handle_event
from shared.redis import Redis
from shared.rpc import ServiceRpc
from shared.service import rpc
from tests.waiting import waiter


wait_for = waiter(timeout=20, interval=0.1)


@pytest.fixture
def vhost_config(infra, config):
    name, uri = infra.new_vhost(uuid.uuid4().hex[:6])
    return name, {**config, "AMQP_URI": uri, "AMQP_QUEUE_TYPE": "quorum"}  # what production runs


def list_queues(vhost: str) -> dict[str, dict]:
    out = subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "type", "durable",
                          "auto_delete", "exclusive", "arguments", "--formatter", "json"],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    return {q["name"]: q for q in json.loads(out)}


def arguments(queue: dict) -> dict:
    args = queue["arguments"]
    return {name: value for name, _type, value in args}  # [[name, type, value], ...]


class Worker:
    name = "qworker"
    redis = Redis()
    config = Config()

    @rpc
    def hello(self):
        return "hello"

    @handle_event("qsource", "job")
    def on_job(self, event):
        key = f"{self.config['REDIS_PREFIX']}:test:q:{event['data']['tag']}"
        attempts = self.redis.incr(f"{key}:attempts")
        if event["data"].get("poison") and not self.redis.get(f"{key}:fixed"):
            raise ValueError("this event cannot be handled (yet)")
        if event["data"].get("outage") and attempts <= 3:
            raise Unavailable("The database is unavailable; try again shortly.")
        self.redis.rpush(f"{key}:done", event["event_id"])

    @batch_handler([("qsource", "line")], queue="qworker-lines", size=10, wait=0.5)
    def on_lines(self, events):
        prefix = f"{self.config['REDIS_PREFIX']}:test:q"
        for event in events:
            data = event["data"]
            self.redis.incr(f"{prefix}:{data['tag']}:tries")
            if data.get("poison") and not self.redis.get(f"{prefix}:{data['tag']}:fixed"):
                raise ValueError("this line cannot be stored (yet)")
        # All or nothing, as a transaction: only a batch that passed records its lines.
        for event in events:
            self.redis.rpush(f"{prefix}:{event['data']['batch']}:stored", event["data"]["tag"])


def send_job(container_factory, config, limit: int, **data) -> tuple[str, dict]:
    """Start the worker with ``limit`` deliveries and send it a job; (its Redis key, the event)."""
    container_factory(Worker, {**config, "AMQP_DELIVERY_LIMIT": limit}).start()
    tag = uuid.uuid4().hex[:8]
    event = envelope("qsource", "job", {"tag": tag, **data})
    event_dispatcher(config)("qsource", "job", event)
    return f"{config['REDIS_PREFIX']}:test:q:{tag}", event


class Caller:
    name = "qcaller"
    worker = ServiceRpc("qworker", timeout=5)

    @rpc
    def call(self):
        return self.worker.hello()


def test_work_queues_are_quorum_with_a_delivery_limit_and_replies_are_exclusive(container_factory, vhost_config):
    vhost, config = vhost_config
    container_factory(Worker, config).start()
    container_factory(Caller, config).start()
    with ServiceRpcProxy("qcaller", config) as caller:  # the caller's reply queue exists once it called
        assert caller.call() == "hello"
    found = list_queues(vhost)
    limit = queues.delivery_limit(config)
    for name in ("rpc-qworker", "evt-qsource-job--qworker.on_job", "qworker-lines", "parking-qworker",
                 "rpc-qcaller", "parking-qcaller"):
        assert found[name]["type"] == "quorum", (name, found[name])
        assert found[name]["durable"] is True
    for name in ("evt-qsource-job--qworker.on_job", "qworker-lines"):
        args = arguments(found[name])
        assert args["x-delivery-limit"] == limit
        assert args["x-dead-letter-exchange"] == "mae.parking"
        assert args["x-dead-letter-routing-key"] == "qworker"
        assert args["x-dead-letter-strategy"] == "at-least-once"
    # RPC requests expire with their caller's timeout: limited, never parked.
    assert arguments(found["rpc-qworker"])["x-delivery-limit"] == limit
    assert "x-dead-letter-exchange" not in arguments(found["rpc-qworker"])
    replies = [q for name, q in found.items() if name.startswith("rpc.reply-qcaller-")]
    assert replies, sorted(found)
    assert all(q["type"] == "classic" and q["exclusive"] is True and q["auto_delete"] is True
               and q["durable"] is False for q in replies), replies


def test_a_poison_message_is_parked_after_its_deliveries_and_redrive_brings_it_back(
        container_factory, vhost_config, redis_client):
    _, config = vhost_config
    key, event = send_job(container_factory, config, 2, poison=True)

    parked = wait_for(lambda: queues.parked_count(config["AMQP_URI"], "qworker"), 30, what="the message to be parked")
    assert parked == 1
    attempts = int(redis_client.get(f"{key}:attempts"))
    assert attempts == 3  # the first delivery and two more (the limit), then parked
    eventlet.sleep(1.0)
    assert int(redis_client.get(f"{key}:attempts")) == attempts, "a parked message is not handed out again"
    assert redis_client.llen(f"{key}:done") == 0

    out = io.StringIO()
    assert redrive(config["AMQP_URI"], "qworker", dry_run=True, out=out) == 1
    assert "would move to evt-qsource-job--qworker.on_job (delivery_limit): qsource.job" in out.getvalue()
    assert queues.parked_count(config["AMQP_URI"], "qworker") == 1  # a dry run moves nothing

    redis_client.set(f"{key}:fixed", 1)  # the fix is deployed
    out = io.StringIO()
    assert redrive(config["AMQP_URI"], "qworker", out=out) == 1
    assert f"moved to evt-qsource-job--qworker.on_job (delivery_limit): qsource.job event_id={event['event_id']}" \
        in out.getvalue()
    wait_for(lambda: redis_client.llen(f"{key}:done"), 15, what="the redriven event to be handled")
    eventlet.sleep(0.5)
    assert redis_client.lrange(f"{key}:done", 0, -1) == [event["event_id"]]
    assert queues.parked_count(config["AMQP_URI"], "qworker") == 0


def test_a_poison_event_in_a_batch_is_parked_alone_and_the_rest_of_its_batch_is_stored(
        container_factory, vhost_config, redis_client):
    _, config = vhost_config
    container_factory(Worker, config).start()
    prefix, batch = f"{config['REDIS_PREFIX']}:test:q", uuid.uuid4().hex[:8]
    tags = [f"{batch}-{i}" for i in range(7)]
    poison = tags[4]
    dispatch = event_dispatcher(config)
    events = {tag: envelope("qsource", "line", {"tag": tag, "batch": batch, "poison": tag == poison}) for tag in tags}
    for tag in tags:  # within the 0.5 s window: one batch
        dispatch("qsource", "line", events[tag])

    parked = wait_for(lambda: queues.parked_count(config["AMQP_URI"], "qworker"), 30, what="the poison line parked")
    assert parked == 1
    wait_for(lambda: redis_client.llen(f"{prefix}:{batch}:stored") == 6, 10, what="the other six lines stored")
    assert sorted(redis_client.lrange(f"{prefix}:{batch}:stored", 0, -1)) == sorted(set(tags) - {poison})
    assert int(redis_client.get(f"{prefix}:{poison}:tries")) >= batching.POISON_ATTEMPTS
    eventlet.sleep(1.0)  # nothing more happens: not retried for ever, nothing stored twice
    assert redis_client.llen(f"{prefix}:{batch}:stored") == 6

    redis_client.set(f"{prefix}:{poison}:fixed", 1)
    out = io.StringIO()
    assert redrive(config["AMQP_URI"], "qworker", out=out) == 1
    assert "moved to qworker-lines (rejected): qsource.line" in out.getvalue()
    wait_for(lambda: redis_client.llen(f"{prefix}:{batch}:stored") == 7, 15, what="the redriven line stored")
    assert queues.parked_count(config["AMQP_URI"], "qworker") == 0


def test_a_dependency_outage_does_not_use_up_deliveries(container_factory, vhost_config, redis_client):
    _, config = vhost_config
    key, event = send_job(container_factory, config, 1, outage=True)
    wait_for(lambda: redis_client.llen(f"{key}:done"), 20, what="the event handled after the outage")
    # Three failures on a limit of one: held and run again, never returned (nor parked).
    assert int(redis_client.get(f"{key}:attempts")) == 4
    assert redis_client.lrange(f"{key}:done", 0, -1) == [event["event_id"]]
    assert queues.parked_count(config["AMQP_URI"], "qworker") == 0


def test_redrive_command_line_moves_at_most_limit(vhost_config):
    vhost, config = vhost_config
    uri = config["AMQP_URI"]
    with Connection(uri) as conn:  # two messages parked from a queue of service "qcli"
        channel = conn.channel()
        queues.parking_queue("qcli")(channel).declare()
        work = queues.work_queue("evt-x-y--qcli.on_y", config, "qcli")
        work(channel).declare()
        for i in range(2):
            channel.basic_publish(channel.prepare_message(json.dumps({"type": "x.y", "event_id": f"e{i}"}),
                                                          0, "application/json", "utf-8", {}, {}),
                                  exchange="", routing_key=work.name)
        for _ in range(2):  # reject without requeue: dead-lettered like a message past its limit
            message = wait_for(lambda: channel.basic_get(work.name), 5, what="a message")
            channel.basic_reject(message.delivery_tag, requeue=False)
    wait_for(lambda: queues.parked_count(uri, "qcli") == 2, 10, what="two parked messages")
    result = subprocess.run([".venv/bin/python", "-m", "scripts.redrive", "qcli", "--limit", "1", "--amqp-uri", uri],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "moved to evt-x-y--qcli.on_y (rejected): x.y event_id=e0" in result.stdout
    assert "moved 1 message(s) of parking-qcli" in result.stdout
    assert queues.parked_count(uri, "qcli") == 1


# -- publishing: confirms and mandatory ------------------------------------------------------------
def test_a_returned_publish_raises_and_leaves_the_channel_in_step(vhost_config):
    _, config = vhost_config
    exchange = Exchange("qconfirm.events", type="topic", durable=True)
    publisher = queues.ConfirmedPublisher(config["AMQP_URI"], exchange=exchange, declare=[exchange])
    with pytest.raises(UndeliverableMessage):
        publisher.publish({"n": 1}, routing_key="nobody")
    with Connection(config["AMQP_URI"]) as conn:
        queue = Queue("qconfirm-heard", exchange=exchange, routing_key="somebody", durable=False, auto_delete=True)
        bound = queue(conn.channel())
        bound.declare()
        publisher.publish({"n": 2}, routing_key="somebody")
        # Had the first return's ack been left unread, this one would pass as confirmed.
        with pytest.raises(UndeliverableMessage):
            publisher.publish({"n": 3}, routing_key="nobody")
        publisher.publish({"n": 4}, routing_key="somebody")
        heard = [wait_for(lambda: bound.get(no_ack=True), 5, what="a message").payload for _ in range(2)]
    assert heard == [{"n": 2}, {"n": 4}]


class Producer:
    name = "qproducer"
    db = Database()
    events = EventPublisher()

    @rpc
    def make(self, tag):
        self.events.publish("made", {"tag": tag})
        return "ok"


class Consumer:
    name = "qconsumer"
    redis = Redis()
    config = Config()

    @handle_event("qproducer", "made")
    def on_made(self, event):
        self.redis.rpush(f"{self.config['REDIS_PREFIX']}:test:made:{event['data']['tag']}", event["event_id"])


@pytest.fixture
def producer_outbox(db_engine):
    table = outbox.model_for("qproducer").__table__
    table.create(db_engine, checkfirst=True)
    yield table
    table.drop(db_engine)


def test_an_event_no_queue_takes_yet_stays_in_the_outbox_until_its_consumer_comes(
        container_factory, vhost_config, producer_outbox, db_engine, redis_client, monkeypatch):
    _, config = vhost_config
    monkeypatch.setattr(outbox, "RELAY_AFTER", outbox.timedelta(seconds=0.3))
    monkeypatch.setattr(outbox, "UNROUTABLE_PAUSE", 0.5)
    container_factory(Producer, {**config, "OUTBOX_RELAY_SECONDS": 0.3}).start()
    tag = uuid.uuid4().hex[:8]
    before = queues.UNROUTABLE.labels("qproducer", "qproducer.made")._value.get()
    with ServiceRpcProxy("qproducer", config) as producer:
        assert producer.make(tag) == "ok"
    eventlet.sleep(1.5)  # the publish after commit and a few relay rounds were returned
    with db_engine.connect() as conn:
        assert len(conn.execute(select(producer_outbox.c.event_id)).all()) == 1, "the event must wait in the outbox"
    assert queues.UNROUTABLE.labels("qproducer", "qproducer.made")._value.get() > before

    container_factory(Consumer, config).start()  # its queue now exists
    key = f"{config['REDIS_PREFIX']}:test:made:{tag}"
    wait_for(lambda: redis_client.llen(key), 15, what="the relayed event")
    eventlet.sleep(1.0)
    assert redis_client.llen(key) == 1
    with db_engine.connect() as conn:
        assert conn.execute(select(producer_outbox.c.event_id)).all() == []


def test_a_service_started_while_the_broker_is_away_starts_once_it_is_back(
        container_factory, vhost_config, producer_outbox, redis_client):
    """A replica restarted during a broker restart (the fault wave does this) must come up when
    the broker does, not die in its publisher's setup."""
    from urllib.parse import urlsplit, urlunsplit

    from tests.tcp_proxy import Proxy

    _, config = vhost_config
    container_factory(Consumer, config).start()
    parts = urlsplit(config["AMQP_URI"])
    broker = Proxy(parts.port or 5672)
    creds = parts.netloc.rsplit("@", 1)[0]
    behind = {**config, "AMQP_URI": urlunsplit(parts._replace(netloc=f"{creds}@127.0.0.1:{broker.port}"))}
    broker.cut()
    producer = container_factory(Producer, behind)
    starting = eventlet.spawn(producer.start)
    # Longer than kombu's own connection retries at setup (2 + 3 + 4 s): past them nameko's
    # publisher setup used to raise, and the process exited.
    eventlet.sleep(12.0)
    assert not starting.dead or starting.wait() is None  # waiting for the broker, or up — not crashed
    broker.restore()
    starting.wait()  # raises if the setup died
    tag = uuid.uuid4().hex[:8]
    with ServiceRpcProxy("qproducer", config) as proxy:
        assert proxy.make(tag) == "ok"
    wait_for(lambda: redis_client.llen(f"{config['REDIS_PREFIX']}:test:made:{tag}"), 15, what="the event")
    producer.stop()
    broker.cut()
