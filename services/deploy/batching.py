"""An event entrypoint that hands its method a *batch* of events, acked only after it returns.

Log lines and status reports arrive in bursts (a rollout on a slow link, an
operator re-sending everything after a restart). Handling them one nameko
worker at a time costs a transaction each; here one worker gets up to
``size`` events — or items, with ``weigh``, when events carry lists of
reports or lines — (or what arrived within ``wait`` seconds) and handles them in
one transaction: one multi-row INSERT for log lines, one pass per Deployment
for reports (only the newest report of a burst matters).

Messages are acked (all at once) only after the worker's transaction has
committed; if the worker raises, the whole batch is requeued after a growing
pause, so nothing is lost and a dependency outage does not spin. Handlers
must therefore be idempotent, as every event handler in MAE is.

Batches of one replica run one after another (or ``depth`` at a time, for log
lines, whose batches commute); replicas compete for the
queue like any nameko event handler (the queue is shared by service name).
"""
from __future__ import annotations

import logging
import socket
import time
from collections import deque

import eventlet
from eventlet.event import Event
from kombu import Connection, Consumer, Queue, binding
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.extensions import Entrypoint
from nameko.standalone.events import get_event_exchange

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = 30.0  # reconnecting to the broker
# Retrying a batch whose handler failed (the database is down): short, so the lines and
# reports held meanwhile (this replica's prefetch) flow within seconds of its return.
MAX_HANDLER_RETRY_DELAY = 5.0


class BatchEventHandler(Entrypoint):
    def __init__(self, bindings: list[tuple[str, str]], queue: str, size: int = 500,
                 wait: float = 0.05, weigh=None, depth: int = 1, **kwargs):
        self.bindings = list(bindings)
        self.queue_name = queue
        self.size = size
        self.wait = wait
        # How much of ``size`` one event uses (an event may carry many reports or lines);
        # by default each counts one.
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
        config = self.container.config
        self.amqp_uri = config[AMQP_URI_CONFIG_KEY]
        self.queue = Queue(
            self.queue_name, durable=True, auto_delete=False,
            bindings=[binding(get_event_exchange(source, config), routing_key=event_type)
                      for source, event_type in self.bindings])
        # Exchanges are declared by their publishers too; declaring here lets the
        # queue bind before the first publisher starts.
        self.exchanges = [get_event_exchange(source, config) for source, _ in self.bindings]

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
                delay = min(MAX_RETRY_DELAY, 0.2 * 2 ** self._failures)
                log.warning("batch consumer lost its connection; reconnecting",
                            extra={"queue": self.queue_name, "error": repr(exc), "delay_s": delay})
                eventlet.sleep(delay)

    def _consume(self):
        with Connection(self.amqp_uri, heartbeat=0) as conn:
            channel = conn.channel()
            for exchange in self.exchanges:
                exchange(channel).declare()
            self.queue(channel).declare()
            channel.basic_qos(0, self.size * self.depth, False)
            buffer: list = []
            weight = [0]
            inflight: deque = deque()  # (messages, green thread) in delivery order

            def take(body, message):
                buffer.append(message)
                try:
                    weight[0] += max(1, int(self.weigh(body)))
                except Exception:  # a malformed event weighs one; the handler judges it
                    weight[0] += 1

            def settle(block: bool) -> None:
                """Ack (or hand back) finished batches, oldest first: acks go out in delivery
                order, from this green thread only (the channel is not shared for writing)."""
                while inflight and (block or inflight[0][1].dead):
                    messages, thread = inflight.popleft()
                    if thread.wait():
                        channel.basic_ack(messages[-1].delivery_tag, multiple=True)
                    else:  # stopping: another replica (or we, later) retries it
                        for message in messages:
                            message.requeue()
                    block = False

            consumer = Consumer(channel, [self.queue], callbacks=[take], accept=["json"])
            try:
                with consumer:
                    # Consuming again: the next lost connection backs off from the start
                    # (not from where the last outage left the delay).
                    self._failures = 0
                    first_at = None
                    while not self._stopping:
                        timeout = self.wait if first_at is None else max(0.0, first_at + self.wait - time.monotonic())
                        if not buffer:
                            timeout = 0.5
                        if inflight:
                            timeout = min(timeout, 0.002)
                        try:
                            conn.drain_events(timeout=max(timeout, 0.001))
                        except socket.timeout:
                            pass
                        settle(block=False)
                        if buffer and first_at is None:
                            first_at = time.monotonic()
                        if buffer and (weight[0] >= self.size or time.monotonic() - first_at >= self.wait):
                            batch, buffer[:] = list(buffer), []
                            first_at, weight[0] = None, 0
                            while len(inflight) >= self.depth:
                                settle(block=True)
                            inflight.append((batch, eventlet.spawn(self._handle, batch)))
            finally:
                while inflight:
                    settle(block=True)

    def _handle(self, messages) -> bool:
        """Run the handler on ``messages`` until it succeeds (True: ack them) or the
        entrypoint stops (False: hand them back)."""
        attempt = 0
        while True:
            events = [m.payload for m in messages]
            done = Event()

            def handle_result(worker_ctx, result, exc_info):
                done.send(exc_info)
                return result, exc_info

            self.container.spawn_worker(self, (events,), {}, context_data={}, handle_result=handle_result)
            exc_info = done.wait()
            if exc_info is None:
                return True
            attempt += 1
            delay = min(MAX_HANDLER_RETRY_DELAY, 0.2 * 2 ** (attempt - 1))
            log.warning("batch handler failed; retrying the batch",
                        extra={"queue": self.queue_name, "events": len(messages), "attempt": attempt,
                               "delay_s": delay, "error": repr(exc_info[1])})
            if self._stopping:
                return False
            eventlet.sleep(delay)


batch_handler = BatchEventHandler.decorator
