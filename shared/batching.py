"""Batch consumers: items gathered from a queue, handed on together, retried with backoff.

Three parts of MAE work this way: the deploy service's event consumers (log lines
and status reports from the broker), the cluster service's report intake (one
transaction for every POST waiting at that moment) and its log shipper (one
``cluster.log`` event for the lines of many applies). Each handles a burst in
one transaction or message instead of one per item, which is what keeps them
cheap under load. The shape they share lives here:

- ``Window``: when a batch is complete — ``size`` (by weight: an item may carry
  many reports or lines), ``max_items`` or ``wait`` seconds after its first item;
- ``collect`` / ``consume_forever``: batches taken from an in-process green-thread
  queue and handed to a function, for ever;
- ``BatchEventHandler`` (``batch_handler``): a nameko entrypoint that hands its
  method a batch of events from the broker and acks them only after the worker's
  transaction committed.

The batch queues are quorum queues with a delivery limit and a parking queue
(``shared/queues.py``). A batch that fails on a dependency outage (``OUTAGE_ERRORS``) is
retried here, in place, so it does not use up deliveries. A batch that fails on anything
else is split in halves, each handled on its own, down to the single event that fails:
that one is tried ``POISON_ATTEMPTS`` times and then rejected into the parking queue,
and the rest of its batch is handled and acked — one bad event never holds up the lines
and reports around it. A message comes back (and counts a delivery) only when this
replica stops or its connection drops — a message that keeps killing its consumer ends
up parked too. The
consumer's connection has heartbeats (``HEARTBEAT``, nameko's key, 60 s by default),
so a broker node that vanishes without closing the socket is noticed; the consume loop
keeps reading (and heartbeating) while its batches wait for the database.
"""
from __future__ import annotations

import logging
import socket
import time
from collections import deque
from typing import Any, Callable

import eventlet
from eventlet.event import Event
from eventlet.queue import Empty, LightQueue
from kombu import Connection, Consumer, binding
from nameko.constants import AMQP_URI_CONFIG_KEY, DEFAULT_HEARTBEAT, HEARTBEAT_CONFIG_KEY
from nameko.extensions import Entrypoint
from nameko.standalone.events import get_event_exchange

from shared import queues
from shared.events import OUTAGE_ERRORS
from shared.retry import backoff_delay

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = 30.0  # reconnecting to the broker
# Retrying a batch whose handler failed (the database is down): short, so the lines and
# reports held meanwhile (this replica's prefetch) flow within seconds of its return.
MAX_HANDLER_RETRY_DELAY = 5.0
RETRY_BASE = 0.2
# Tries of one event that fails on its own (not an outage) before it is parked.
POISON_ATTEMPTS = 3


def _weight(weigh: Callable[[Any], int], item) -> int:
    try:
        return max(1, int(weigh(item)))
    except Exception:  # a malformed item weighs one; whoever handles it judges it
        return 1


class Window:
    """The batch being gathered: complete at ``size`` (summed weight), at ``max_items``,
    or ``wait`` seconds after its first item arrived."""

    def __init__(self, size: int, wait: float, weigh: Callable[[Any], int] | None = None,
                 max_items: int | None = None, clock: Callable[[], float] = time.monotonic):
        self.size, self.wait, self.max_items, self.clock = size, wait, max_items, clock
        self.weigh = weigh or (lambda item: 1)
        self.items: list = []
        self.weight = 0
        self.first_at: float | None = None

    def add(self, item, payload=None) -> None:
        """Add ``item``, weighed by ``payload`` (the item itself unless given)."""
        if not self.items:
            self.first_at = self.clock()
        self.items.append(item)
        self.weight += _weight(self.weigh, item if payload is None else payload)

    def full(self) -> bool:
        return self.weight >= self.size or (self.max_items is not None and len(self.items) >= self.max_items)

    def remaining(self) -> float:
        """Seconds until the batch is due by time (``wait`` while it is empty)."""
        if self.first_at is None:
            return self.wait
        return max(0.0, self.first_at + self.wait - self.clock())

    def due(self) -> bool:
        return bool(self.items) and (self.full() or self.remaining() <= 0)

    def take(self) -> list:
        items, self.items, self.weight, self.first_at = self.items, [], 0, None
        return items


def collect(queue: LightQueue, window: Window) -> list:
    """The next batch from ``queue``: waits for a first item, then takes what follows until
    the window is full or its time is up (``wait`` 0: only what is waiting already)."""
    window.add(queue.get())
    while not window.full():
        remaining = window.remaining()
        try:
            window.add(queue.get(timeout=remaining) if remaining > 0 else queue.get_nowait())
        except Empty:
            break
    return window.take()


def consume_forever(queue: LightQueue, handle: Callable[[list], None], window: Window, what: str) -> None:
    """Hand every batch of ``queue`` to ``handle``; a failing batch is logged, not retried
    here (the handlers keep what they must in an outbox, or retry themselves)."""
    while True:
        batch = collect(queue, window)
        try:
            handle(batch)
        except Exception as exc:
            log.warning("handling a batch of %d %s failed: %r", len(batch), what, exc)


class BatchEventHandler(Entrypoint):
    """An event entrypoint that hands its method a *batch* of events, acked only after it returns.

    One worker gets up to ``size`` events — or items, with ``weigh``, when events
    carry lists of reports or lines — or what arrived within ``wait`` seconds, and
    handles them in one transaction. Messages are acked (all at once) only after the
    worker's transaction has committed; if the worker raises, the whole batch is
    retried after a growing pause, so nothing is lost and a dependency outage does
    not spin. Handlers must therefore be idempotent, as every event handler in MAE is.

    Batches of one replica run one after another (or ``depth`` at a time, for
    handlers whose batches commute); replicas compete for the queue like any nameko
    event handler (the queue is shared by service name).
    """

    def __init__(self, bindings: list[tuple[str, str]], queue: str, size: int = 500,
                 wait: float = 0.05, weigh=None, depth: int = 1, **kwargs):
        self.bindings = list(bindings)
        self.queue_name = queue
        self.size = size
        self.wait = wait
        # How much of ``size`` one event uses; by default each counts one.
        self.weigh = weigh or (lambda payload: 1)
        # Batches handled at once (each its own worker and transaction). Above one, the
        # next batch is read and parsed while the previous one waits for the database;
        # only for handlers whose batches may commit in any order (acks still go out in
        # delivery order).
        self.depth = max(1, int(depth))
        self._stopping = False
        self._thread = None
        super().__init__(**kwargs)

    def setup(self):
        config, service = self.container.config, self.container.service_name
        self.amqp_uri = config[AMQP_URI_CONFIG_KEY]
        self.heartbeat = float(config.get(HEARTBEAT_CONFIG_KEY, DEFAULT_HEARTBEAT) or 0)
        self.queue = queues.work_queue(
            self.queue_name, config, service,
            bindings=[binding(get_event_exchange(source, config), routing_key=event_type)
                      for source, event_type in self.bindings])
        # Exchanges are declared by their publishers too; declaring here lets the
        # queue bind before the first publisher starts.
        self.exchanges = [get_event_exchange(source, config) for source, _ in self.bindings]
        queues.declare_at_start(config, service, [*self.exchanges, self.queue])

    def start(self):
        self._stopping = False
        self._thread = self.container.spawn_managed_thread(self._run)

    def stop(self):
        self._stopping = True
        if self._thread is not None:
            self._thread.wait()

    def kill(self):
        self._stopping = True
        if self._thread is not None:
            self._thread.kill()

    # -- consuming ----------------------------------------------------------------
    def _run(self):
        self._failures = 0
        while not self._stopping:
            try:
                self._consume()
            except Exception as exc:  # connection lost, broker restarting: reconnect with backoff
                self._failures += 1
                delay = backoff_delay(self._failures, RETRY_BASE, MAX_RETRY_DELAY)
                log.warning("batch consumer lost its connection; reconnecting",
                            extra={"queue": self.queue_name, "error": repr(exc), "delay_s": delay})
                eventlet.sleep(delay)

    def _consume(self):
        with Connection(self.amqp_uri, heartbeat=self.heartbeat) as conn:
            channel = conn.channel()
            for exchange in self.exchanges:
                exchange(channel).declare()
            self.queue(channel).declare()
            channel.basic_qos(0, self.size * self.depth, False)
            window = Window(self.size, self.wait, self.weigh)
            inflight: deque = deque()  # (messages, green thread) in delivery order

            def settle(block: bool) -> None:
                """Ack (or hand back) finished batches, oldest first: acks go out in delivery
                order, from this green thread only (the channel is not shared for writing)."""
                while inflight and (block or inflight[0][1].dead):
                    messages, thread = inflight.popleft()
                    done, poison = thread.wait()
                    if done:
                        for message in poison:  # dead-lettered to the parking queue
                            channel.basic_reject(message.delivery_tag, requeue=False)
                        channel.basic_ack(messages[-1].delivery_tag, multiple=True)
                    else:  # stopping: another replica (or we, later) retries it
                        for message in messages:
                            message.requeue()
                    block = False

            consumer = Consumer(channel, [self.queue], callbacks=[lambda body, message: window.add(message, body)],
                                accept=["json"])
            try:
                with consumer:
                    # Consuming again: the next lost connection backs off from the start
                    # (not from where the last outage left the delay).
                    self._failures = 0
                    while not self._stopping:
                        timeout = window.remaining() if window.items else 0.5
                        if inflight:
                            timeout = min(timeout, 0.002)
                        try:
                            conn.drain_events(timeout=max(timeout, 0.001))
                        except socket.timeout:
                            pass
                        if self.heartbeat:
                            conn.heartbeat_check()
                        settle(block=False)
                        if not window.due():
                            continue
                        if len(inflight) >= self.depth:
                            # Wait for the oldest batch, a second at most: then read (prefetch
                            # bounds what arrives) and heartbeat while the handler still waits.
                            with eventlet.Timeout(1.0, False):
                                inflight[0][1].wait()
                            continue
                        batch = window.take()
                        inflight.append((batch, eventlet.spawn(self._handle, batch)))
            finally:
                while inflight:
                    settle(block=True)

    def _run_worker(self, messages) -> tuple | None:
        """One worker on ``messages``' events; its exc_info, or None when it committed."""
        done = Event()

        def handle_result(worker_ctx, result, exc_info):
            done.send(exc_info)
            return result, exc_info

        self.container.spawn_worker(self, ([m.payload for m in messages],), {}, context_data={},
                                    handle_result=handle_result)
        return done.wait()

    def _handle(self, messages) -> tuple[bool, list]:
        """Run the handler on ``messages`` until every event is handled or found poison.
        (True, the poison messages to park) — ack the rest; (False, []) when the entrypoint
        stops first — hand them all back."""
        attempt = 0
        poison_tries = 0
        while True:
            exc_info = self._run_worker(messages)
            if exc_info is None:
                return True, []
            outage = isinstance(exc_info[1], OUTAGE_ERRORS)
            if not outage and len(messages) > 1:  # find the event that fails, keep the rest
                log.warning("batch handler failed; handling the batch in halves to find the event that fails",
                            extra={"queue": self.queue_name, "events": len(messages), "error": repr(exc_info[1])})
                middle = len(messages) // 2
                poison = []
                for half in (messages[:middle], messages[middle:]):
                    done, found = self._handle(half)
                    if not done:
                        return False, []
                    poison.extend(found)
                return True, poison
            if not outage:
                poison_tries += 1
                if poison_tries >= POISON_ATTEMPTS:
                    payload = messages[0].payload
                    log.error("event failed %d times on its own; parking it", poison_tries,
                              extra={"queue": self.queue_name, "error": repr(exc_info[1]),
                                     "event_id": payload.get("event_id") if isinstance(payload, dict) else None})
                    return True, list(messages)
            delay = backoff_delay(attempt, RETRY_BASE, MAX_HANDLER_RETRY_DELAY)
            attempt += 1
            log.warning("batch handler failed; retrying the batch",
                        extra={"queue": self.queue_name, "events": len(messages), "attempt": attempt,
                               "delay_s": delay, "error": repr(exc_info[1])})
            if self._stopping:
                return False, []
            eventlet.sleep(delay)


batch_handler = BatchEventHandler.decorator
