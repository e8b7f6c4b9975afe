"""Small services that play a part around the one under test: a recorder of the events
another service publishes, and a producer whose first publish is lost so that only its
outbox relay can deliver."""
from __future__ import annotations

import json

from nameko.dependency_providers import Config

from shared.events import EventPublisher, handle_event
from shared.redis import Redis
from tests.service.broker_faults import lose_first_publish


def event_recorder(name: str, source: str, event_type: str, into: str):
    """A service class ``name`` that pushes each ``source``/``event_type`` event it hears,
    as JSON, onto the Redis list the ``heard_on(into)`` fixture reads back."""

    class Recorder:
        redis = Redis()
        config = Config()

        @handle_event(source, event_type)
        def on_event(self, event):
            self.redis.rpush(f"{self.config['REDIS_PREFIX']}:test:{into}", json.dumps(event))

    Recorder.name = name
    Recorder.__name__ = Recorder.__qualname__ = f"Recorder_{name}"
    return Recorder


def start_relaying(container_factory, producer_cls, listener_cls, config, monkeypatch):
    """Start ``listener_cls``, then ``producer_cls`` with a fast outbox relay and its first
    publish lost after the commit (``lose_first_publish``); the producer's container."""
    container_factory(listener_cls, config).start()
    producer = container_factory(producer_cls, {**config, "OUTBOX_RELAY_SECONDS": 0.3})
    producer.start()
    lose_first_publish(next(d for d in producer.dependencies if isinstance(d, EventPublisher)), monkeypatch)
    return producer
