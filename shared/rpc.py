"""RPC proxies that give up: a call waits at most ``timeout`` seconds.

nameko 2.14's RpcProxy waits for ever when the target service's queue exists
but nobody consumes it (the service is down). Callers here need a bounded wait
that turns into ``Unavailable`` (HTTP 503); the request message is published
with the same expiration so that a stale request is not executed later.
"""
from __future__ import annotations

import logging
import time

import eventlet
from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu.exceptions import OperationalError as KombuOperationalError
from nameko.exceptions import UnknownService
from nameko.rpc import (RPC_QUEUE_TEMPLATE, MethodProxy, ReplyListener, Rpc, RpcConsumer, RpcProxy, ServiceProxy,
                        get_rpc_exchange)

from shared import metrics, queues, tracing
from shared.errors import Unavailable

BROKER_ERRORS = (KombuOperationalError, AmqpConnectionError, ConnectionError)

log = logging.getLogger(__name__)


class QuorumRpcConsumer(RpcConsumer):
    """nameko's RPC consumer, with ``rpc-<service>`` a quorum queue (``shared/queues.py``):
    replicated, and with a delivery limit past which a request is dropped, not parked
    (it expired with its caller's timeout)."""

    def setup(self):
        if self.queue is None:
            config, service = self.container.config, self.container.service_name
            self.queue = queues.work_queue(RPC_QUEUE_TEMPLATE.format(service), config, service, park=False,
                                           exchange=get_rpc_exchange(config), routing_key=f"{service}.*")
            queues.declare_at_start(config, service, [self.queue])
            queues.watch_parking(config, service)
            self.queue_consumer.register_provider(self)
            self._registered = True


class ExclusiveReplyListener(ReplyListener):
    """nameko's reply listener with an exclusive, auto-deleted, non-durable reply queue: on
    a cluster it lives on the node of its connection and goes with it (a durable classic
    queue would stay behind on a dead node and block the caller's reconnection)."""

    def setup(self):
        super().setup()
        self.queue = queues.reply_queue(self.queue.name, self.queue.exchange, self.routing_key)


class ReliableRpc(Rpc):
    """nameko's RPC entrypoint, except that a reply which cannot be sent because the broker
    went away (restarting) does not kill the service, and whose request queue is a
    quorum queue (``QuorumRpcConsumer``).

    nameko sends the reply inside the worker's thread; when that publish fails the
    container dies ("thread exited with error") and `nameko run` exits, so one RabbitMQ
    restart would take every replica of a busy service down at once. Here the failure
    is logged instead; the request stays
    unacked on the dead connection, so the broker hands it out again unless it has
    expired (callers publish requests with their timeout as expiration), and the
    caller, which hears nothing, gives up with Unavailable after its timeout.
    """

    rpc_consumer = QuorumRpcConsumer()

    def handle_result(self, message, worker_ctx, result, exc_info):
        try:
            return super().handle_result(message, worker_ctx, result, exc_info)
        except BROKER_ERRORS as exc:
            log.warning("could not send the reply of %s: the broker is unavailable (%s)",
                        worker_ctx.call_id, exc)
            return result, exc_info


class _TimedMethodProxy(MethodProxy):
    _span = None

    def __init__(self, *args, timeout: float, **options):
        self.timeout = timeout
        super().__init__(*args, expiration=timeout, **options)

    def __call__(self, *args, **kwargs):
        return self.call_async(*args, **kwargs).result(self.timeout)

    def get_message_headers(self, worker_ctx):
        headers = super().get_message_headers(worker_ctx)
        if self._span is not None:
            headers.update(tracing.message_headers(tracing.headers_for(self._span)))
        return headers

    def call_async(self, *args, **kwargs):
        started = time.perf_counter()
        self._span = tracing.start_client_span(
            f"{self.service_name}.{self.method_name}",
            {"rpc.system": "nameko", "rpc.service": self.service_name, "rpc.method": self.method_name},
        ) if tracing.ENABLED else None
        try:
            reply = self._call(*args, **kwargs)
        except (UnknownService, *BROKER_ERRORS) as exc:
            # Not running, or the broker is down or restarting: 503, try again; not a 500.
            error = Unavailable(f"The {self.service_name} service is not running." if isinstance(exc, UnknownService)
                                else f"The {self.service_name} service cannot be reached: the message broker "
                                     f"is unavailable ({exc}).", {"service": self.service_name})
            metrics.rpc_call_done(self.service_name, self.method_name, started, error)
            tracing.end_span(self._span, error)
            raise error from exc
        return _TimedReply(reply, self, started, self._span)


class _TimedReply:
    def __init__(self, reply, proxy: _TimedMethodProxy, started: float, span=None):
        self.reply = reply
        self.proxy = proxy
        self.started = started
        self.span = span

    def result(self, timeout: float | None = None):
        error = None
        try:
            return self._result(timeout)
        except BaseException as exc:
            error = exc
            raise
        finally:
            if self.started is not None:  # once per call, however often result() is asked
                metrics.rpc_call_done(self.proxy.service_name, self.proxy.method_name, self.started, error)
                tracing.end_span(self.span, error)
                self.started = None

    def _result(self, timeout: float | None = None):
        timeout = self.proxy.timeout if timeout is None else timeout
        try:
            with eventlet.Timeout(timeout):
                return self.reply.result()
        except eventlet.Timeout:
            # Forget the pending reply so the listener does not keep it for ever.
            events = self.proxy.reply_listener._reply_events
            for key, event in list(events.items()):
                if event is self.reply.reply_event:
                    events.pop(key, None)
            raise Unavailable(
                f"The {self.proxy.service_name} service did not answer within {timeout:g} s.",
                {"service": self.proxy.service_name},
            )


class _TimedServiceProxy(ServiceProxy):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _TimedMethodProxy(
            self.worker_ctx, self.service_name, name, self.reply_listener,
            **self.options,
        )


class ServiceRpc(RpcProxy):
    """``auth = ServiceRpc("auth")``; the timeout defaults to config RPC_TIMEOUT."""

    rpc_reply_listener = ExclusiveReplyListener()

    def __init__(self, target_service: str, timeout: float | None = None, **options):
        super().__init__(target_service, **options)
        self.timeout = timeout

    def get_dependency(self, worker_ctx):
        timeout = self.timeout or float(self.container.config.get("RPC_TIMEOUT", 15))
        return _TimedServiceProxy(
            worker_ctx, self.target_service, self.rpc_reply_listener,
            timeout=timeout, **self.options,
        )
