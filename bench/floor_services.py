"""The two services of the RPC floor benchmark: a bare gateway route and an echo service.

They use MAE's own plumbing (``shared.web.route``, ``shared.rpc.ServiceRpc``,
metrics and call-context providers) so the floor is what every real request pays.
"""
from shared.logging import CallContext
from shared.metrics import Metrics
from shared.rpc import ServiceRpc
from shared.service import rpc
from shared.web import route


class EchoService:
    name = "bench_echo"
    metrics = Metrics()
    call_context = CallContext()

    @rpc
    def echo(self, message):
        return message


class BenchGateway:
    name = "bench_gateway"
    echo_rpc = ServiceRpc("bench_echo")
    metrics = Metrics()
    call_context = CallContext()

    @route("GET", "/plain/<message>")
    def plain(self, request, message):
        return {"echo": message}

    @route("GET", "/echo/<message>")
    def echo(self, request, message):
        return {"echo": self.echo_rpc.echo(message)}
