from openapi_spec_validator import validate

from gateway import openapi
from gateway.service import GatewayService


def test_openapi_document_is_valid_and_lists_the_operations_endpoints():
    doc = openapi.build(GatewayService)
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    for path in ("/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"):
        assert "get" in doc["paths"][path]
    assert "503" in doc["paths"]["/readyz"]["get"]["responses"]


def test_every_route_declares_the_answers_the_http_layer_gives():
    doc = openapi.build(GatewayService)
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            codes = set(op["responses"])
            if op.get("security"):
                assert "401" in codes, (method, path)
                if method.upper() in openapi.WRITES:
                    assert "429" in codes and "Retry-After" in op["responses"]["429"]["headers"], (method, path)
            if "requestBody" in op:
                assert {"400", "413"} <= codes, (method, path)
    assert "503" not in doc["paths"]["/healthz"]["get"]["responses"]
