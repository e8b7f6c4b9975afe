"""The OpenAPI 3.1 document, built from the gateway's routes.

Each ``route`` carries its own documentation (summary, tags, auth, request and
response schemas), so a route cannot exist without appearing here. The answers the
HTTP layer gives on every route of a kind are added here, once, so no route can
forget them: 401 where a token is required, 400 and 413 where a body is read, 429
(with ``Retry-After``) on authenticated writes (``gateway/ratelimit.py``), and 503
wherever a service is asked (an RPC that times out).
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

ERROR_REF = {"$ref": "#/components/schemas/Error"}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before the next write",
                               "required": True, "schema": {"type": "integer", "minimum": 1}}}
DESCRIPTIONS = {400: "Malformed request", 401: "No valid token", 403: "Not allowed",
                404: "Not found", 409: "Conflict", 413: "Body too large", 422: "Invalid",
                429: "Too many writes with this token", 503: "A dependency is down"}

_PARAM = re.compile(r"<(?:[a-z]+:)?([a-zA-Z_]+)>")


def _routes(service_cls):
    for attr in dir(service_cls):
        fn = getattr(service_cls, attr, None)
        for ext in getattr(fn, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(ext, Route):
                yield attr, ext


def _errors(meta: dict, method: str) -> set[int]:
    """The route's declared errors and those the HTTP layer adds to every route of its kind."""
    errors = set(meta.get("errors", ()))
    if meta.get("auth", False):
        errors.add(401)
        if method in WRITES:
            errors.add(429)
    if "body" in meta or method in WRITES:
        errors.update({400, 413})
    if not meta.get("local", False):
        errors.add(503)
    return errors


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
            for status in sorted(_errors(meta, method)):
                responses[str(status)] = {
                    "description": DESCRIPTIONS.get(status, "Error"),
                    "content": {"application/json": {"schema": ERROR_REF}},
                }
                if status == 429:
                    responses[str(status)]["headers"] = RETRY_AFTER
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
