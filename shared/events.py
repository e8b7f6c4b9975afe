"""Event publishing with an envelope, and event handlers that keep their message.

Every event is ``{"event_id", "type", "source", "occurred_at", "data"}``; the id
lets handlers be idempotent (a consumer may see an event twice, never zero
times). Events published inside a transactional worker go through the
service's outbox (``shared/outbox.py``): stored with the work, sent after the
commit, re-sent by a relay if the process died in between — so nobody hears
about work that was rolled back, and no committed work goes unannounced.

Events are published with publisher confirms and ``mandatory``
(``shared.queues.ConfirmedPublisher``): an event the broker did not take, or could
route to no queue, is a failed publish and stays in the outbox, which retries it.
(The alternative, every publisher declaring every consumer's queue, would need a list
of consumers kept beside the handlers; a returned message needs nothing.) So a
consumer whose queue does not exist yet — first start, a new vhost — gets the events
published before it came, instead of the broker dropping them.

nameko's ``event_handler`` acks a message whose handler raised, which loses it.
``handle_event`` retries instead, after a growing pause so that a failing handler
does not spin: a dependency outage (database, Redis, broker, a 503 from another
service) runs the handler again on the message it holds, without returning it; any
other error returns the message to its queue, where it counts towards the queue's
delivery limit — past ``AMQP_DELIVERY_LIMIT`` the message is parked
(``shared/queues.py``) instead of failing for ever.

When tracing is on (``shared/tracing.py``) an event carries the trace context
of the span that published it as ``nameko.traceparent``; an outbox row keeps
that context, so an event the relay sends late still joins its trace.
"""
from __future__ import annotations

import logging
import socket
import uuid
from datetime import datetime, timezone
from functools import partial

import eventlet
from kombu.exceptions import OperationalError as KombuOperationalError
from nameko.amqp.publish import UndeliverableMessage
from nameko.constants import AMQP_SSL_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY
from nameko.events import EventDispatcher, EventHandler, get_event_exchange
from nameko.messaging import Publisher

from shared import metrics, outbox, queues, tracing
from shared.db import Database, after_commit, pending_after_commit
from shared.retry import backoff_delay

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

    publisher_cls = queues.ConfirmedPublisher

    def __init__(self, source: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self._source = source

    def setup(self):
        self.options["confirm_timeout"] = queues.confirm_timeout(self.container.config)
        self.source = self._source or self.container.service_name
        self.exchange = get_event_exchange(self.source, self.container.config)
        self.declare.append(self.exchange)
        try:
            Publisher.setup(self)  # EventDispatcher.setup would bind the service's own exchange
        except (KombuOperationalError, ConnectionError, OSError) as exc:
            # Started while the broker is away (a restart, a failover): start all the same —
            # the publisher declares its exchange again on every publish, and the outbox holds
            # what cannot go out yet. Crashing here would leave the replica down for good
            # wherever nothing restarts it.
            log.warning("the broker is unavailable at start (%s); exchanges are declared at the first publish", exc)
            self.publisher = self.publisher_cls(
                self.amqp_uri, serializer=self.options.pop("serializer", self.serializer), exchange=self.exchange,
                declare=self.declare, ssl=self.container.config.get(AMQP_SSL_CONFIG_KEY),
                login_method=self.container.config.get(LOGIN_METHOD_CONFIG_KEY), **self.options)
        self.database = next((d for d in self.container.dependencies if isinstance(d, Database)), None)
        self.service = self.container.service_name
        self.relay_seconds = float(self.container.config.get("OUTBOX_RELAY_SECONDS", 2))

    def start(self):
        # One relay per service process: the first transactional publisher runs it,
        # for every source (the audit log publishes through the same outbox).
        publishers = sorted((d for d in self.container.dependencies if isinstance(d, EventPublisher)),
                            key=lambda d: d.attr_name)
        if self.database is not None and publishers and publishers[0] is self:
            self.container.spawn_managed_thread(self._relay_forever)

    def send_now(self, source: str, event_type: str, body: dict, trace: dict | None = None) -> None:
        """Publish on the broker at once, outside any transaction (the outbox relay, and
        callers that keep their own outbox row and clear it once this returned)."""
        self.publisher.publish(body, exchange=get_event_exchange(source, self.container.config),
                               routing_key=event_type, extra_headers=tracing.message_headers(trace or {}))

    def _relay_forever(self):
        while True:
            eventlet.sleep(self.relay_seconds)
            try:
                sent = outbox.relay(self.database.engine, self.service, self.send_now)
            except Exception as exc:  # the database or broker is down: the rows wait
                log.warning("outbox relay failed: %s", exc)
                continue
            if sent:
                metrics.OUTBOX_RELAYED.labels(self.service).inc(sent)

    def get_dependency(self, worker_ctx):
        # nameko's context headers (call id stack, and whatever context the worker received)
        base_headers = self.get_message_headers(worker_ctx)
        exchange = self.exchange
        source, service, database = self.source, self.service, self.database

        def dispatch(event_type, event, trace):
            headers = {**base_headers, **tracing.message_headers(trace)} if trace else base_headers
            self.publisher.publish(event, exchange=exchange, routing_key=event_type, extra_headers=headers)

        def send_and_forget(staged):
            """After the commit: every event this worker staged, in order; then their
            outbox rows, in one statement (one commit for all, not one per event)."""
            sent = []
            for event_type, event, trace in staged:
                try:
                    dispatch(event_type, event, trace)
                except UndeliverableMessage as exc:  # no queue for it (yet): the relay retries it
                    queues.UNROUTABLE.labels(service, event["type"]).inc()
                    log.warning("event %s was returned by the broker; left to the outbox relay: %s",
                                event["type"], exc)
                    continue
                except Exception as exc:  # the relay will send it (and the rest)
                    metrics.PUBLISH_DEFERRED.labels(service).inc()
                    log.warning("publish after commit failed; left to the outbox relay: %s", exc)
                    break
                sent.append(event["event_id"])
            try:
                outbox.forget_many(database.engine, service, sent)
            except Exception as exc:
                log.warning("could not clear sent outbox rows (they will be sent again): %s", exc)

        # This worker's staged events, sent by one after-commit callback. A transaction
        # that is run again (retry_deadlocks) drops its callbacks: its events rolled back
        # with it, and the next attempt starts a new list.
        batch = {"staged": [], "callback": None}

        def stage_for_commit(event_type, event, trace):
            callback = batch["callback"]
            if callback is None or callback not in pending_after_commit(worker_ctx):
                staged = batch["staged"] = []
                callback = batch["callback"] = lambda: send_and_forget(staged)
                after_commit(worker_ctx, callback)
            batch["staged"].append((event_type, event, trace))

        class Publisher:
            @staticmethod
            def publish(event_type: str, data: dict, event_id: str | None = None) -> dict:
                event = envelope(source, event_type, data, event_id)
                # The publishing span's context, taken now: after the commit (or in the
                # relay) the worker's span may be over.
                trace = tracing.headers_for() if tracing.ENABLED else {}
                metrics.EVENTS_PUBLISHED.labels(service, event["type"]).inc()
                if database is None:
                    dispatch(event_type, event, trace)
                else:
                    outbox.stage(database.sessions[worker_ctx], service, event, trace)
                    stage_for_commit(event_type, event, trace)
                return event

        return Publisher()


def _outage_errors() -> tuple[type[BaseException], ...]:
    """Errors that say a dependency is away, not that the event is bad."""
    from amqp.exceptions import ConnectionError as AmqpConnectionError
    from kombu.exceptions import OperationalError as KombuOperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy.exc import InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from shared.errors import Unavailable

    return (Unavailable, OperationalError, InterfaceError, PoolTimeout, RedisConnectionError, RedisTimeoutError,
            KombuOperationalError, AmqpConnectionError, ConnectionError, TimeoutError, socket.timeout)


OUTAGE_ERRORS = _outage_errors()


class ReliableEventHandler(EventHandler):
    """An event handler whose failures are retried after a backoff, on a quorum queue.

    A dependency outage (``OUTAGE_ERRORS``) runs the handler again on the message this
    replica holds; any other error requeues it, which counts a delivery. The attempt
    count is per process and per event id: good enough to pace retries; a redelivery
    to another replica starts its own count.
    """

    def __init__(self, *args, **kwargs):
        kwargs["requeue_on_error"] = True
        super().__init__(*args, **kwargs)
        self._attempts: dict[str, int] = {}
        self._stopping = False

    def setup(self):
        self._stopping = False
        super().setup()
        queue, config, service = self.queue, self.container.config, self.container.service_name
        if not (queue.exclusive or queue.auto_delete):  # broadcast / unreliable handlers stay classic
            self.queue = queues.work_queue(queue.name, config, service, exchange=queue.exchange,
                                           routing_key=queue.routing_key)
            queues.declare_at_start(config, service, [self.queue])

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        key = message.payload.get("event_id") if isinstance(message.payload, dict) else None
        if exc_info is None:
            self._attempts.pop(key, None)
            return super().handle_result(message, worker_ctx, result, exc_info)
        attempt = self._attempts.get(key, 0) + 1 if key else 1
        if key:
            self._attempts[key] = attempt
        delay = backoff_delay(attempt - 1, 0.2, MAX_RETRY_DELAY)
        outage = isinstance(exc_info[1], OUTAGE_ERRORS)
        metrics.EVENT_REQUEUES.labels(self.container.service_name, self.method_name).inc()
        log.warning("event handler failed; %s", "retrying (a dependency is away)" if outage else "requeueing",
                    extra={"event_id": key, "attempt": attempt, "delay_s": delay,
                           "deliveries": (message.headers or {}).get("x-delivery-count", 0) + 1,
                           "delivery_limit": queues.delivery_limit(self.container.config)})
        eventlet.sleep(delay)
        if not outage or self._stopping:  # returned to the queue (a stopping replica hands it on)
            return super().handle_result(message, worker_ctx, result, exc_info)
        # Held, not returned: an outage does not use up the message's deliveries.
        self.container.spawn_managed_thread(partial(self._handle_again, message))
        return result, exc_info

    def _handle_again(self, message):
        if self._stopping:
            self.queue_consumer.requeue_message(message)
        else:
            self.handle_message(message.payload, message)

    def stop(self):
        self._stopping = True
        super().stop()


handle_event = ReliableEventHandler.decorator
