"""Every argument MAE's RabbitMQ queues are declared with, in one place.

* **Work queues** — RPC request queues (``rpc-<service>``), event handler queues
  (``evt-<source>-<type>--<service>.<method>``) and the batch queues
  (``deploy-cluster-status``, ``deploy-log-lines``) — are *quorum* queues: replicated
  on a RabbitMQ cluster (Raft), durable, and never exclusive or auto-deleted.
* Each has a **delivery limit** (``AMQP_DELIVERY_LIMIT``): a message handed out more
  often than that — a handler that keeps failing on it, or a process that keeps
  dying on it — is dead-lettered to ``mae.parking`` and lands in its service's
  **parking queue** ``parking-<service>`` (at-least-once dead-lettering, so a parked
  message is never dropped on the way), where ``mae_parked_messages`` counts it and
  ``python -m scripts.redrive <service>`` moves it back to the queue it came from.
* RPC requests are the exception to parking: the caller gave up after its timeout
  and each request carries that timeout as its expiration, so a request past its
  delivery limit is stale and is dropped rather than parked (running it later would
  do work nobody waits for). Dead-lettering them would also park every *expired*
  request.
* **Reply queues** stay exclusive, auto-deleted, non-durable classic queues: they
  live on the caller's connection's node, and vanish with it.

RabbitMQ refuses to re-declare an existing classic queue as a quorum queue
(PRECONDITION_FAILED); ``declare_at_start`` turns that into a readable
``QueueMismatch`` when a process starts, pointing at the migration procedure
(docs/operations-rabbitmq.md).
"""
from __future__ import annotations

import logging
import time

from amqp.exceptions import PreconditionFailed
from kombu import Exchange, Queue
from kombu.exceptions import OperationalError as KombuOperationalError
from kombu.pools import connections
from nameko.amqp.publish import Publisher as PublisherCore
from nameko.amqp.publish import UndeliverableMessage, get_connection, get_producer
from nameko.constants import AMQP_URI_CONFIG_KEY
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

PARKING_EXCHANGE = "mae.parking"
DEFAULT_DELIVERY_LIMIT = 20
DEFAULT_CONFIRM_TIMEOUT = 10.0
MIGRATION_DOC = "docs/operations-rabbitmq.md"

UNROUTABLE = Counter(
    "mae_events_unroutable_total",
    "Events the broker returned because no queue is bound for them (left in the outbox, retried).",
    ["service", "event_type"],
)


class QueueMismatch(RuntimeError):
    """A queue exists with other arguments than this version declares (a classic queue of an
    older MAE where a quorum queue is wanted): the process must not start on this vhost."""


def delivery_limit(config) -> int:
    return max(1, int(config.get("AMQP_DELIVERY_LIMIT", DEFAULT_DELIVERY_LIMIT)))


def confirm_timeout(config) -> float:
    return float(config.get("AMQP_CONFIRM_TIMEOUT", DEFAULT_CONFIRM_TIMEOUT))


def queue_type(config) -> str:
    """``AMQP_QUEUE_TYPE``: ``quorum`` (production, development) or ``classic`` (config/test.yaml:
    the whole suite on one test broker made ~1,000 quorum queues, and RabbitMQ 3.10 on two
    cores stalled creating vhosts; the queue tests and the broker-cluster wave use quorum)."""
    return "classic" if str(config.get("AMQP_QUEUE_TYPE", "quorum")).lower() == "classic" else "quorum"


def work_queue_arguments(config, service: str, park: bool = True) -> dict:
    if queue_type(config) == "classic":
        return {}  # a plain durable classic queue: no delivery limit, nothing parked
    arguments = {"x-queue-type": "quorum", "x-delivery-limit": delivery_limit(config)}
    if park:
        arguments.update({
            "x-dead-letter-exchange": PARKING_EXCHANGE,
            "x-dead-letter-routing-key": service,
            # At-least-once: the parked copy is confirmed before the original goes (it needs
            # reject-publish overflow; MAE sets no length limit, so nothing is ever rejected).
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        })
    return arguments


def work_queue(name: str, config, service: str, park: bool = True, **kwargs) -> Queue:
    """A durable quorum queue ``name`` of ``service`` (``kwargs``: exchange, routing_key, bindings)."""
    return Queue(name, durable=True, auto_delete=False, exclusive=False,
                 queue_arguments=work_queue_arguments(config, service, park), **kwargs)


def reply_queue(name: str, exchange: Exchange, routing_key: str) -> Queue:
    """An RPC reply queue: exclusive to its consumer's connection, gone with it."""
    return Queue(name, exchange=exchange, routing_key=routing_key, durable=False, exclusive=True,
                 auto_delete=True)


def parking_exchange() -> Exchange:
    return Exchange(PARKING_EXCHANGE, type="direct", durable=True)


def parking_queue(service: str) -> Queue:
    return Queue(f"parking-{service}", exchange=parking_exchange(), routing_key=service, durable=True,
                 queue_arguments={"x-queue-type": "quorum"})


_declared: set = set()


def declare_at_start(config, service: str, entities) -> None:
    """Declare ``service``'s parking queue and ``entities`` (queues, with their exchanges and
    bindings) now, when the process starts.

    A queue that exists with other arguments raises ``QueueMismatch`` (the process exits
    with that message instead of retrying its consumer for ever). A broker that cannot be
    reached is left to the consumers, which declare again on every (re)connection.
    """
    amqp_uri = config[AMQP_URI_CONFIG_KEY]
    wanted = [parking_queue(service), *entities]
    todo = [e for e in wanted if (amqp_uri, e.name) not in _declared]
    if not todo:
        return
    try:
        with get_connection(amqp_uri) as conn:
            for entity in todo:
                channel = conn.channel()
                try:
                    entity(channel).declare()
                except PreconditionFailed as exc:
                    raise QueueMismatch(mismatch_message(entity.name, amqp_uri, exc)) from exc
                finally:
                    _close_quietly(channel)
                _declared.add((amqp_uri, entity.name))
    except QueueMismatch:
        raise
    except (KombuOperationalError, ConnectionError, OSError) as exc:
        log.warning("could not declare queues at start (the consumers will): %s", exc)


def mismatch_message(queue: str, amqp_uri: str, exc: Exception) -> str:
    vhost = amqp_uri.rsplit("/", 1)[-1] or "/"
    return (f"RabbitMQ queue {queue!r} in vhost {vhost!r} exists with other arguments than this MAE "
            f"declares ({exc}). It is most likely a classic queue left by an older MAE; a classic queue "
            f"cannot become a quorum queue in place. Point AMQP_URI at a new vhost, drain the old one "
            f"with `python -m scripts.queue_migrate`, and switch: see {MIGRATION_DOC}.")


def _close_quietly(channel) -> None:
    try:
        channel.close()
    except Exception:  # a channel the broker closed already (after PRECONDITION_FAILED)
        pass


# -- publishing ---------------------------------------------------------------------------------
class ConfirmedPublisher(PublisherCore):
    """nameko's publisher with publisher confirms and ``mandatory`` set, and a message the
    broker returns (no queue bound for it) raised as ``UndeliverableMessage``.

    nameko detects a return by the ``ChannelError`` py-amqp raises when nobody listens for
    it; that leaves the message's ack unread on the pooled channel, so the *next* publish on
    it would take that stale ack for its own. Here a ``basic_return`` listener collects the
    return while the confirm is awaited, so both frames are read and the channel stays in step.
    """

    use_confirms = True
    mandatory = True

    def __init__(self, amqp_uri, confirm_timeout: float = DEFAULT_CONFIRM_TIMEOUT, **kwargs):
        super().__init__(amqp_uri, **kwargs)
        self.confirm_timeout = confirm_timeout

    def publish(self, payload, **kwargs):
        options = dict(self.publish_kwargs)
        headers = {**options.pop("headers", {}), **kwargs.pop("headers", {}), **kwargs.pop("extra_headers", {})}
        defaults = {"delivery_mode": self.delivery_mode, "mandatory": self.mandatory, "priority": self.priority,
                    "expiration": self.expiration, "serializer": self.serializer,
                    "compression": self.compression, "retry": self.retry, "retry_policy": self.retry_policy}
        options.update({key: kwargs.pop(key, default) for key, default in defaults.items()})
        options["declare"] = [*self.declare, *kwargs.pop("declare", ())]
        options.update(kwargs)
        returned: list = []

        def on_return(exc, exchange, routing_key, message):
            returned.append((exchange, routing_key, exc))

        with get_producer(self.amqp_uri, True, self.ssl, self.login_method, dict(self.transport_options)) as producer:
            listeners = producer.channel.events["basic_return"]
            listeners.add(on_return)
            try:
                producer.publish(payload, headers=headers, confirm_timeout=self.confirm_timeout, **options)
            finally:
                listeners.discard(on_return)
        if returned:
            exchange, routing_key, exc = returned[0]
            raise UndeliverableMessage(f"no queue is bound for {exchange}/{routing_key} ({exc})")


# -- the parked-messages gauge ------------------------------------------------------------------
class _ParkedCollector:
    """``mae_parked_messages{service}``: messages waiting in ``parking-<service>``, read (a
    passive declare) when Prometheus scrapes, at most every ``ttl`` seconds."""

    def __init__(self, ttl: float = 15.0):
        self.ttl = ttl
        self.services: dict[str, str] = {}  # service -> AMQP URI
        self.cache: dict[str, tuple[float, int]] = {}

    def describe(self):
        return [GaugeMetricFamily("mae_parked_messages", "", labels=["service"])]

    def collect(self):
        family = GaugeMetricFamily(
            "mae_parked_messages",
            "Messages in the service's parking queue (past their delivery limit); "
            "`python -m scripts.redrive <service>` moves them back.", labels=["service"])
        now = time.monotonic()
        for service, amqp_uri in list(self.services.items()):
            at, count = self.cache.get(service, (0.0, None))
            if now - at > self.ttl:
                count = parked_count(amqp_uri, service)
                self.cache[service] = (now, count)
            if count is not None:
                family.add_metric([service], count)
        yield family


def parked_count(amqp_uri: str, service: str, timeout: float = 2.0) -> int | None:
    """Messages in ``parking-<service>`` (None when the broker does not answer)."""
    from kombu import Connection

    try:
        with connections[Connection(amqp_uri, connect_timeout=timeout)].acquire(block=True, timeout=timeout) as conn:
            channel = conn.channel()
            try:
                _, count, _ = parking_queue(service)(channel).queue_declare(passive=True)
            finally:
                _close_quietly(channel)
            return count
    except Exception as exc:  # broker away, or no parking queue yet: no sample this scrape
        log.debug("could not count parked messages of %s: %s", service, exc)
        return None


_parked = _ParkedCollector()
REGISTRY.register(_parked)


def watch_parking(config, service: str) -> None:
    """Export ``mae_parked_messages`` for ``service`` from this process."""
    _parked.services[service] = config[AMQP_URI_CONFIG_KEY]
