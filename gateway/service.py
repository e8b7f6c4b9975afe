"""The gateway: MAE's only public HTTP surface.

Routes stay thin: parse, authorise, call a service over RPC, shape the answer.
Errors raised by services arrive as the same ``shared.errors`` classes and are
mapped to HTTP by ``shared.web`` through the one table in ``shared.errors``.
Each area's routes live in ``gateway/routes/<area>.py``.
"""
from __future__ import annotations

from nameko.dependency_providers import Config

from gateway.ratelimit import WriteRateLimit
from gateway.routes.apps import AppRoutes
from gateway.routes.auth import AuthRoutes
from gateway.routes.ci import CIRoutes
from gateway.routes.clusters import ClusterRoutes
from gateway.routes.console import ConsoleRoutes
from gateway.routes.deploys import DeployRoutes
from gateway.routes.ingresses import IngressRoutes
from gateway.routes.notifications import NotificationRoutes
from gateway.routes.operations import OperationsRoutes
from gateway.routes.runtime import RuntimeRoutes
from gateway.routes.servers import ServerRoutes
from gateway.routes.shipping import ShippingRoutes
from gateway.routes.templates import TemplateRoutes
from shared.config import RequiredSettings
from shared.logging import CallContext
from shared.metrics import Metrics
from shared.probes import BrokerHealth
from shared.redis import Redis
from shared.rpc import ServiceRpc


class GatewayService(OperationsRoutes, AuthRoutes, AppRoutes, ServerRoutes, NotificationRoutes,
                     ConsoleRoutes, ClusterRoutes, DeployRoutes, IngressRoutes, ShippingRoutes, RuntimeRoutes, CIRoutes,
                     TemplateRoutes):
    name = "gateway"

    auth = ServiceRpc("auth")
    org = ServiceRpc("org")
    deploy = ServiceRpc("deploy")
    cluster = ServiceRpc("cluster")
    server = ServiceRpc("server")
    notify = ServiceRpc("notify")

    config = Config()
    redis = Redis()
    # Asked by shared.web before each request is dispatched: writes per token.
    rate_limit = WriteRateLimit()
    metrics = Metrics()
    call_context = CallContext()
    # Readiness: this process's AMQP connection (shared.probes).
    broker = BrokerHealth()
    required = RequiredSettings()
