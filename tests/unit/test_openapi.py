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
