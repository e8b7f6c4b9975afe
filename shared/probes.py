"""Probes and scrapes that never wait for a busy worker, and the broker's part in readiness.

nameko runs every entrypoint in one pool of ``max_workers`` green threads. When all of
them are busy (a burst of deploys, slow cluster calls, long polls of deploy logs), a
kubelet's ``/healthz`` would queue behind them, time out, and the kubelet would restart a
replica that was only busy — the worst moment to do it. ``probe`` routes run their worker
in a small pool of their own (``PROBE_WORKERS``), with the same dependencies, logging and
error handling as any route.

``BrokerHealth`` says whether this process's AMQP consumer is connected: a replica whose
broker connection is down is alive but not ready (it takes no work and cannot answer RPC).
"""
from __future__ import annotations

import time
from functools import partial

from eventlet.event import Event
from eventlet.greenpool import GreenPool
from nameko.containers import WorkerContext
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import DependencyProvider
from nameko.messaging import QueueConsumer

from shared.web import Route

# Probes of one replica in flight at once: the kubelet's two or three, a scrape, a person.
PROBE_WORKERS = 8


def _probe_pool(container) -> GreenPool:
    pool = getattr(container, "_mae_probe_pool", None)
    if pool is None:
        pool = container._mae_probe_pool = GreenPool(PROBE_WORKERS)
    return pool


def spawn_probe_worker(container, entrypoint, args, kwargs, context_data=None, handle_result=None):
    """``ServiceContainer.spawn_worker`` (nameko 2.14), but in the probe pool: the worker is
    tracked, killed and waited for like any other, only not counted against ``max_workers``."""
    if container._being_killed:
        raise ContainerBeingKilled()
    worker_ctx = WorkerContext(container, container.service_cls(), entrypoint, args, kwargs, data=context_data)
    thread = _probe_pool(container).spawn(container._run_worker, worker_ctx, handle_result)
    thread.link(container._handle_worker_thread_exited, worker_ctx)
    container._worker_threads[worker_ctx] = thread
    return worker_ctx


class ProbeRoute(Route):
    def handle_request(self, request):
        request.shallow = False
        try:
            context_data = self.server.context_data_from_headers(request)
            args, kwargs = self.get_entrypoint_parameters(request)
            self.check_signature(args, kwargs)
            done = Event()
            spawn_probe_worker(self.container, self, args, kwargs, context_data=context_data,
                               handle_result=partial(self.handle_result, done))
            return self.response_from_result(done.wait())
        except Exception as exc:
            return self.response_from_exception(exc)


probe = ProbeRoute.decorator


class BrokerHealth(DependencyProvider):
    """``check()`` → ``{"ok", ...}``: is the process's AMQP consumer connected?

    Follows the container's ``QueueConsumer`` (RPC, events, replies all share it): kombu
    calls ``on_connection_error`` while it cannot reconnect and nameko's
    ``on_consume_ready`` once consumers are back.
    """

    def setup(self):
        self.down_since: float | None = None
        self.error: str | None = None

    def start(self):
        for extension in self.container.extensions:
            if isinstance(extension, QueueConsumer):
                self._follow(extension)
                break

    def _follow(self, consumer: QueueConsumer) -> None:
        lost, back = consumer.on_connection_error, consumer.on_consume_ready

        def on_connection_error(exc, interval):
            self.down_since = self.down_since or time.monotonic()
            self.error = f"{type(exc).__name__}: {exc}"[:300]
            return lost(exc, interval)

        def on_consume_ready(connection, channel, consumers, **kwargs):
            self.down_since, self.error = None, None
            return back(connection, channel, consumers, **kwargs)

        consumer.on_connection_error = on_connection_error
        consumer.on_consume_ready = on_consume_ready

    def check(self) -> dict:
        if self.down_since is None:
            return {"ok": True}
        return {"ok": False, "error": f"the broker connection is down ({self.error})",
                "down_seconds": round(time.monotonic() - self.down_since, 1)}

    def get_dependency(self, worker_ctx):
        return self
