"""Operations: liveness, readiness, metrics and the OpenAPI document."""
from __future__ import annotations

from gateway import openapi
from gateway.auth import authenticate
from gateway.readiness import probe_services
from shared.metrics import exposition
from shared.service import INSTANCE, check
from shared.errors import MaeError
from shared.probes import probe
from shared.web import error_body, route

SERVICE_NAMES = ("auth", "org", "deploy", "cluster", "server", "notify")

JSON_OK = {200: {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}}


class OperationsRoutes:
    @probe("GET", "/healthz", summary="The gateway process is up", tags=["operations"],
           responses=JSON_OK, local=True)
    def healthz(self, request):
        return {"status": "ok", "instance": INSTANCE}

    @probe("GET", "/readyz", summary="Every service, RabbitMQ, MySQL and Redis are reachable",
           tags=["operations"], responses={**JSON_OK, 503: {"description": "Not ready"}})
    def readyz(self, request):
        timeout = float(self.config.get("HEALTH_TIMEOUT", 3))
        services = probe_services({n: getattr(self, n) for n in SERVICE_NAMES}, timeout)
        gateway = {"redis": check(self.redis.ping), "broker": self.broker.check()}
        failing = [n for n, s in services.items() if not s.get("ok")]
        failing += [f"gateway.{k}" for k, v in gateway.items() if not v["ok"]]
        body = {"status": "ready" if not failing else "not_ready", "failing": failing}
        if self._is_admin(request):  # the checks' own words are for admins; probes need the status
            body.update(services=services, gateway=gateway)
        if failing:
            body.update(error_body("unavailable", "Not ready: %s." % ", ".join(
                f"{n} is down" for n in failing), {"failing": failing}))
            return 503, body
        return body

    def _is_admin(self, request) -> bool:
        if not request.headers.get("Authorization"):
            return False
        try:
            return authenticate(self, request).is_admin
        except MaeError:
            return False

    @probe("GET", "/metrics", summary="Prometheus metrics", tags=["operations"],
           responses={200: {"description": "Prometheus text format"}}, local=True)
    def prometheus_metrics(self, request):
        return exposition()

    @route("GET", "/api/v1/openapi.json", summary="This document", tags=["operations"],
           responses=JSON_OK, local=True)
    def openapi_document(self, request):
        return openapi.build(type(self))
