"""RPC proxies that give up: a call waits at most ``timeout`` seconds.

nameko 2.14's RpcProxy waits for ever when the target service's queue exists
but nobody consumes it (the service is down). Callers here need a bounded wait
that turns into ``Unavailable`` (HTTP 503); the request message is published
with the same expiration so that a stale request is not executed later.
"""
from __future__ import annotations

import eventlet
from nameko.exceptions import UnknownService
from nameko.rpc import MethodProxy, RpcProxy, ServiceProxy

from shared.errors import Unavailable


class _TimedMethodProxy(MethodProxy):
    def __init__(self, *args, timeout: float, **options):
        self.timeout = timeout
        super().__init__(*args, expiration=timeout, **options)

    def __call__(self, *args, **kwargs):
        return self.call_async(*args, **kwargs).result(self.timeout)

    def call_async(self, *args, **kwargs):
        try:
            reply = self._call(*args, **kwargs)
        except UnknownService:
            raise Unavailable(f"The {self.service_name} service is not running.",
                              {"service": self.service_name})
        return _TimedReply(reply, self)


class _TimedReply:
    def __init__(self, reply, proxy: _TimedMethodProxy):
        self.reply = reply
        self.proxy = proxy

    def result(self, timeout: float | None = None):
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

    def __init__(self, target_service: str, timeout: float | None = None, **options):
        super().__init__(target_service, **options)
        self.timeout = timeout

    def get_dependency(self, worker_ctx):
        timeout = self.timeout or float(self.container.config.get("RPC_TIMEOUT", 15))
        return _TimedServiceProxy(
            worker_ctx, self.target_service, self.rpc_reply_listener,
            timeout=timeout, **self.options,
        )
