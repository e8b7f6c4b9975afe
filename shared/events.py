"""Event publishing with an envelope, and event handlers that keep their message.

Every event is ``{"event_id", "type", "source", "occurred_at", "data"}``; the id
lets handlers be idempotent (a consumer may see an event twice, never zero
times). Events published inside a transactional worker leave only after the
commit, so nobody hears about work that was rolled back.

nameko's ``event_handler`` acks a message whose handler raised, which loses it.
``handle_event`` requeues instead, after a growing pause so that a handler
failing on a dependency outage does not spin.
"""
from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timezone

import eventlet
from nameko.events import EventDispatcher, EventHandler, get_event_exchange
from nameko.messaging import Publisher

from shared.db import after_commit, has_transaction

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = 30.0


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def envelope(source: str, event_type: str, data: dict, event_id: str | None = None) -> dict:
    return {
        "event_id": event_id or uuid.uuid4().hex,
        "type": f"{source}.{event_type}",
        "source": source,
        "occurred_at": now_rfc3339(),
        "data": data,
    }


class EventPublisher(EventDispatcher):
    """``self.events.publish("application_created", {...})`` → ``org.application_created``.

    ``source`` defaults to the service's name; the audit log publishes under
    one shared source so its consumer binds to a single exchange.
    """

    def __init__(self, source: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self._source = source

    def setup(self):
        self.source = self._source or self.container.service_name
        self.exchange = get_event_exchange(self.source, self.container.config)
        self.declare.append(self.exchange)
        Publisher.setup(self)  # EventDispatcher.setup would bind the service's own exchange
        self.transactional = has_transaction(self)

    def get_dependency(self, worker_ctx):
        dispatch = super().get_dependency(worker_ctx)
        source = self.source
        transactional = self.transactional

        class Publisher:
            @staticmethod
            def publish(event_type: str, data: dict, event_id: str | None = None) -> dict:
                event = envelope(source, event_type, data, event_id)
                if transactional:
                    after_commit(worker_ctx, lambda: dispatch(event_type, event))
                else:
                    dispatch(event_type, event)
                return event

        return Publisher()


class ReliableEventHandler(EventHandler):
    """An event handler whose failures requeue the message after a backoff.

    The attempt count is per process and per event id: good enough to pace
    retries; a redelivery to another replica starts its own count.
    """

    def __init__(self, *args, **kwargs):
        kwargs["requeue_on_error"] = True
        super().__init__(*args, **kwargs)
        self._attempts: dict[str, int] = {}

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        if exc_info is not None:
            key = (message.payload or {}).get("event_id") if isinstance(message.payload, dict) else None
            attempt = self._attempts.get(key, 0) + 1 if key else 1
            if key:
                self._attempts[key] = attempt
            delay = min(MAX_RETRY_DELAY, 0.2 * 2 ** (attempt - 1))
            log.warning("event handler failed; requeueing",
                        extra={"event_id": key, "attempt": attempt, "delay_s": delay})
            eventlet.sleep(delay)
        else:
            key = message.payload.get("event_id") if isinstance(message.payload, dict) else None
            self._attempts.pop(key, None)
        return super().handle_result(message, worker_ctx, result, exc_info)


handle_event = ReliableEventHandler.decorator
