"""From classic queues to quorum queues (docs/operations-rabbitmq.md): a new vhost, drain
the old one with ``scripts.queue_migrate``, switch.

A vhost where an older MAE left classic queues (and an event nobody handled yet): this
MAE refuses to start on it with a message that says why and where the procedure is,
instead of a consumer retrying for ever; started on a new vhost, it gets the waiting
event once the script moved it, and the script says when the old vhost is drained.
"""
from __future__ import annotations

import subprocess
import uuid

import eventlet
import pytest
from kombu import Connection, Exchange, Queue
from nameko.dependency_providers import Config
from nameko.standalone.events import event_dispatcher

from shared.events import envelope, handle_event
from shared.queues import QueueMismatch
from shared.redis import Redis
from shared.service import rpc
from tests.waiting import waiter

SERVICE = "qmigrating"


class Migrating:
    name = SERVICE
    redis = Redis()
    config = Config()

    @rpc
    def hello(self):
        return "hello"

    @handle_event("qmsource", "job")
    def on_job(self, event):
        self.redis.rpush(f"{self.config['REDIS_PREFIX']}:test:migrated:{event['data']['tag']}", event["event_id"])


def migrate(*args):
    return subprocess.run([".venv/bin/python", "-m", "scripts.queue_migrate",
                           "--services", "tests.integration.test_queue_migration:Migrating", *args],
                          capture_output=True, text=True, timeout=120)


def leave_classic_queues(amqp_uri: str) -> None:
    """What MAE before quorum queues declared: nameko's classic, durable queues."""
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        Queue(f"rpc-{SERVICE}", Exchange("nameko-rpc", type="topic", durable=True), routing_key=f"{SERVICE}.*",
              durable=True)(channel).declare()
        Queue(f"evt-qmsource-job--{SERVICE}.on_job", Exchange("qmsource.events", type="topic", durable=True),
              routing_key="job", durable=True)(channel).declare()


def test_a_classic_queue_stops_the_start_and_the_old_vhost_is_drained_into_the_new(
        infra, config, container_factory, redis_client):
    _, old_uri = infra.new_vhost("old-" + uuid.uuid4().hex[:4])
    _, new_uri = infra.new_vhost("new-" + uuid.uuid4().hex[:4])
    config = {**config, "AMQP_QUEUE_TYPE": "quorum"}  # what production runs
    old_config, new_config = {**config, "AMQP_URI": old_uri}, {**config, "AMQP_URI": new_uri}
    leave_classic_queues(old_uri)
    tag = uuid.uuid4().hex[:8]
    event = envelope("qmsource", "job", {"tag": tag})
    event_dispatcher(old_config)("qmsource", "job", event)  # waiting in the old vhost

    with pytest.raises(QueueMismatch) as caught:
        container_factory(Migrating, old_config).start()
    message = str(caught.value)
    assert "classic queue left by an older MAE" in message
    assert "docs/operations-rabbitmq.md" in message and "scripts.queue_migrate" in message

    checked = migrate("--from-uri", old_uri)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert f"evt-qmsource-job--{SERVICE}.on_job: 1 message(s)" in checked.stdout
    assert "not drained" in checked.stdout

    container_factory(Migrating, new_config).start()  # the new version, on the new vhost
    moved = migrate("--from-uri", old_uri, "--move", "--to-uri", new_uri)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert f"evt-qmsource-job--{SERVICE}.on_job: 0 message(s), moved 1" in moved.stdout
    assert "drained: the old vhost can be deleted" in moved.stdout

    key = f"{config['REDIS_PREFIX']}:test:migrated:{tag}"
    waiter(timeout=15, interval=0.1)(lambda: redis_client.llen(key), what="the moved event handled")
    eventlet.sleep(0.5)
    assert redis_client.lrange(key, 0, -1) == [event["event_id"]]
    assert migrate("--from-uri", old_uri).returncode == 0
