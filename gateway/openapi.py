"""The OpenAPI 3.1 document, built from the gateway's routes.

Each ``route`` carries its own documentation (summary, tags, auth, request and
response schemas), so a route cannot exist without appearing here.
"""
from __future__ import annotations

import re

from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

from shared.web import Route

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}

_PARAM = re.compile(r"<(?:[a-z]+:)?([a-zA-Z_]+)>")


def _routes(service_cls):
    for attr in dir(service_cls):
        fn = getattr(service_cls, attr, None)
        for ext in getattr(fn, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(ext, Route):
                yield attr, ext


def build(service_cls, version: str = "0.1.0") -> dict:
    paths: dict = {}
    for name, route in sorted(_routes(service_cls), key=lambda pair: pair[1].url):
        meta = route.meta
        if meta.get("hidden"):
            continue
        path = _PARAM.sub(r"{\1}", route.url)
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PARAM.findall(route.url)
        ] + list(meta.get("query", []))
        for method in route.method.split(","):
            responses = {}
            for status, spec in meta.get("responses", {200: {"description": "OK"}}).items():
                responses[str(status)] = spec
            for status in meta.get("errors", ()):
                responses[str(status)] = {
                    "description": "Error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
            op = {
                "operationId": meta.get("operation_id") or f"{method.lower()}_{name}",
                "summary": meta.get("summary", name.replace("_", " ")),
                "tags": meta.get("tags", []),
                "parameters": params,
                "responses": responses,
            }
            if meta.get("auth", False):
                op["security"] = [{"bearer": []}]
            if "body" in meta:
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": meta["body"]}},
                }
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "MAE API", "version": version,
                 "description": "MAE — an app engine for small teams on Kubernetes."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR_SCHEMA},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
