"""Errors that cross RPC, and the one table that maps them to HTTP.

Services raise these; nameko serialises them into the RPC reply and, because
each class is registered with ``deserialize_to_instance``, the caller gets the
same class back (message and details intact) instead of a ``RemoteError``.
The gateway turns them into the API's error body through ``HTTP_ERRORS`` —
the only place a domain error meets an HTTP status.
"""
from __future__ import annotations

import inspect

from nameko.exceptions import deserialize_to_instance


class MaeError(Exception):
    """Base of every error a person may see. ``message`` is one sentence."""

    code = "error"

    def __init__(self, message: str = "", details: dict | None = None):
        super().__init__(message, details or {})
        self.message = message or (inspect.getdoc(type(self)) or "Error.").splitlines()[0]
        self.details = details or {}

    def __str__(self) -> str:
        return self.message


def _register(cls):
    return deserialize_to_instance(cls)


@_register
class BadRequest(MaeError):
    """The request is malformed."""
    code = "bad_request"


@_register
class Unauthorized(MaeError):
    """Authentication is required."""
    code = "unauthorized"


@_register
class Forbidden(MaeError):
    """You are not allowed to do this."""
    code = "forbidden"


@_register
class NotFound(MaeError):
    """No such thing."""
    code = "not_found"


@_register
class AlreadyExists(MaeError):
    """It exists already."""
    code = "already_exists"


@_register
class Conflict(MaeError):
    """It was changed by someone else; reload and try again."""
    code = "conflict"


@_register
class PayloadTooLarge(MaeError):
    """The request body is too large."""
    code = "payload_too_large"


@_register
class Invalid(MaeError):
    """The request is well-formed but invalid."""
    code = "invalid"


@_register
class ReservedName(Invalid):
    """The name belongs to the cluster's system or to MAE itself."""
    code = "reserved_name"


@_register
class QuotaExceeded(Invalid):
    """A per-person limit is reached."""
    code = "quota_exceeded"


@_register
class PolicyViolation(Invalid):
    """An object breaks the workload policy; details say {rule, object, path}."""
    code = "policy_violation"


@_register
class UrlNotAllowed(Invalid):
    """A URL MAE would call points where MAE does not send requests; details say {field, reason}."""
    code = "url_not_allowed"


@_register
class NamespaceExists(Conflict):
    """A namespace of that name exists on a cluster and is not MAE's."""
    code = "namespace_exists"


@_register
class HostTaken(Conflict):
    """The ingress host belongs to another application."""
    code = "host_taken"


@_register
class VersionNotReady(Conflict):
    """Traffic goes only to a version whose last deploy on that cluster succeeded."""
    code = "version_not_ready"


@_register
class VersionRouted(Conflict):
    """The version gets its service's traffic there; route elsewhere first."""
    code = "version_routed"


@_register
class RateLimited(MaeError):
    """Too many requests; slow down."""
    code = "rate_limited"


@_register
class Unavailable(MaeError):
    """A dependency is down; try again shortly."""
    code = "unavailable"


# (status, code) per error type; subclasses inherit their parent's row.
HTTP_ERRORS: dict[type[MaeError], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    AlreadyExists: 409,
    Conflict: 409,
    PayloadTooLarge: 413,
    Invalid: 422,
    RateLimited: 429,
    Unavailable: 503,
}

# Every domain error is expected: nameko logs it as a warning, not a crash.
EXPECTED = tuple(HTTP_ERRORS)


def http_status(exc: MaeError) -> int:
    for cls in type(exc).__mro__:
        if cls in HTTP_ERRORS:
            return HTTP_ERRORS[cls]
    return 500


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}
