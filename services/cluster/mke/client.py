"""One client per cluster, built from (server, CA, token) with the official kubernetes client.

Every call has a connect and a read timeout, and transient failures (cannot
connect, timed out, 429, 5xx) are retried a bounded number of times through
``shared.retry.retry_call``; what is left becomes a ``ClusterError`` whose
``reason``/``message``/``code`` are what the cluster said (or what stopped us
reaching it), ready to be shown to a person.

Objects travel as plain dicts (the API's own JSON) rather than generated
models: the diff compares them field by field, and the deploy service stores
them as rendered.
"""
from __future__ import annotations

import json
import ssl
import time
from typing import Callable

import urllib3
from kubernetes import client as k8s

from services.cluster.metrics import CLUSTER_API_CALLS
from services.cluster.mke.kinds import Kind
from shared import tracing
from shared.retry import retry_call

TRANSIENT_CODES = {429, 500, 502, 503, 504}


# shared.compat repairs urllib3's SSLContext under eventlet for every process (import of shared).


class ClusterError(Exception):
    """What the cluster answered (or why it could not be asked)."""

    def __init__(self, reason: str, message: str, code: int | None = None):
        super().__init__(message)
        self.reason, self.message, self.code = reason, message, code

    @property
    def transient(self) -> bool:
        return self.reason in ("Unreachable", "Timeout") or self.code in TRANSIENT_CODES

    def as_dict(self) -> dict:
        return {"reason": self.reason, "message": self.message, "code": self.code}

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


def _connection_error(exc: Exception) -> ClusterError:
    inner = getattr(exc, "reason", None) or exc
    text = str(inner)
    if isinstance(inner, urllib3.exceptions.SSLError) or isinstance(exc, urllib3.exceptions.SSLError) \
            or "CERTIFICATE_VERIFY_FAILED" in text:
        return ClusterError("TLSError", f"TLS handshake with the API server failed: {text}"[:500])
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2: refused is not slow.
    if isinstance(inner, urllib3.exceptions.NewConnectionError) or "refused" in text.lower():
        return ClusterError("Unreachable", f"Cannot reach the API server: {text}"[:500])
    if isinstance(inner, urllib3.exceptions.TimeoutError) or isinstance(exc, urllib3.exceptions.TimeoutError):
        return ClusterError("Timeout", f"The API server did not answer in time: {text}"[:500])
    return ClusterError("Unreachable", f"Cannot reach the API server: {text}"[:500])


def _status_error(status: int, raw: bytes) -> ClusterError:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    default = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "AlreadyExists",
               422: "Invalid", 429: "TooManyRequests"}.get(status, "InternalError" if status >= 500 else "BadRequest")
    message = body.get("message") or (raw or b"").decode(errors="replace")[:300] or f"HTTP {status}"
    return ClusterError(body.get("reason") or default, message, status)


class ClusterClient:
    def __init__(self, name: str, server: str, ca_pem: str, token: str, *,
                 connect_timeout: float = 5.0, read_timeout: float = 20.0,
                 attempts: int = 3, backoff: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep):
        self.name = name
        self.server = server.rstrip("/")
        cfg = k8s.Configuration()
        cfg.host = self.server
        cfg.ca_cert_data = ca_pem
        cfg.verify_ssl = True
        cfg.api_key = {"authorization": "Bearer " + token}
        cfg.retries = 0  # our retries (bounded, with backoff), not urllib3's silent ones
        cfg.connection_pool_maxsize = 8
        self._api = k8s.ApiClient(cfg)
        self.timeout = (connect_timeout, read_timeout)
        self.attempts, self.backoff, self._sleep = attempts, backoff, sleep
        self.calls = 0  # requests sent, retries included (tests count them)

    def close(self) -> None:
        try:
            self._api.close()
        except Exception:  # closing a pool must never fail the caller
            pass

    # ------------------------------------------------------------------ raw
    def _once(self, method: str, path: str, body=None, query=None, content_type=None):
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        params = self._api.param_serialize(method, path, query_params=list((query or {}).items()),
                                           header_params=headers, body=body,
                                           auth_settings=["BearerToken"])
        self.calls += 1
        started, outcome = time.perf_counter(), "error"
        with tracing.span(f"k8s {method}", tracing.trace.SpanKind.CLIENT,
                          {"http.request.method": method, "url.path": path, "mae.cluster": self.name}) as span:
            try:
                resp = self._api.call_api(*params, _request_timeout=self.timeout)
                raw = resp.read()
                outcome = str(resp.status)
            except urllib3.exceptions.HTTPError as exc:
                error = _connection_error(exc)
                outcome = error.reason
                raise error from None
            except (OSError, ssl.SSLError) as exc:
                error = _connection_error(exc)
                outcome = error.reason
                raise error from None
            finally:
                CLUSTER_API_CALLS.labels(self.name, method, outcome).observe(time.perf_counter() - started)
                if span is not None:
                    span.set_attribute("mae.outcome", outcome)
        if resp.status >= 400:
            raise _status_error(resp.status, raw)
        return json.loads(raw) if raw else None

    def stream(self, path: str, query: dict | None = None, read_timeout: float | None = None):
        """A GET whose body is read as it arrives (``pods/log?follow=true``): one attempt,
        the urllib3 response on 2xx (the caller reads ``.stream()`` and ``.release_conn()``s
        it), a ``ClusterError`` otherwise. ``read_timeout`` bounds a silence, not the stream."""
        params = self._api.param_serialize("GET", path, query_params=list((query or {}).items()),
                                           header_params={"Accept": "*/*"}, auth_settings=["BearerToken"])
        self.calls += 1
        started, outcome = time.perf_counter(), "error"
        try:
            resp = self._api.call_api(*params, _request_timeout=(self.timeout[0], read_timeout or self.timeout[1]))
            outcome = str(resp.status)
        except (urllib3.exceptions.HTTPError, OSError, ssl.SSLError) as exc:
            error = _connection_error(exc)
            outcome = error.reason
            raise error from None
        finally:
            CLUSTER_API_CALLS.labels(self.name, "GET", outcome).observe(time.perf_counter() - started)
        if resp.status >= 400:
            raw = resp.read()
            resp.response.release_conn()
            raise _status_error(resp.status, raw)
        return resp.response

    def request(self, method: str, path: str, body=None, query=None, content_type=None):
        """One API call with bounded retries on transient failures."""
        def transient(exc):
            return isinstance(exc, ClusterError) and exc.transient

        def call():
            try:
                return self._once(method, path, body, query, content_type)
            except ClusterError as exc:
                if not exc.transient:
                    raise _Final(exc) from None
                raise

        try:
            return retry_call(call, attempts=self.attempts, base=self.backoff, cap=5.0,
                              retry_on=(ClusterError,), sleep=self._sleep)
        except _Final as wrapped:
            raise wrapped.error from None

    # ------------------------------------------------------------- per kind
    def get(self, kind: Kind, namespace: str | None, name: str) -> dict | None:
        try:
            return self.request("GET", kind.path(namespace, name))
        except ClusterError as exc:
            if exc.code == 404:
                return None
            raise

    def create(self, kind: Kind, namespace: str | None, body: dict) -> dict:
        return self.request("POST", kind.path(namespace), body)

    def replace(self, kind: Kind, namespace: str | None, name: str, body: dict) -> dict:
        return self.request("PUT", kind.path(namespace, name), body)

    def list(self, kind: Kind, namespace: str | None = None, *, label_selector: str | None = None,
             field_selector: str | None = None, page: int = 500) -> list[dict]:
        """Every object of a kind (in one namespace, or across all), fetched ``page`` at a time
        (``limit``/``continue``) so that a big list never comes as one huge answer."""
        items: list[dict] = []
        token = None
        while True:
            query = {"limit": str(page)}
            if label_selector:
                query["labelSelector"] = label_selector
            if field_selector:
                query["fieldSelector"] = field_selector
            if token:
                query["continue"] = token
            body = self.request("GET", kind.collection(namespace), query=query) or {}
            items.extend(body.get("items") or [])
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                return items

    def remove(self, kind: Kind, namespace: str | None, name: str) -> dict | None:
        """Delete (background propagation: the cluster's GC removes dependents); None if absent."""
        try:
            return self.request("DELETE", kind.path(namespace, name),
                                {"kind": "DeleteOptions", "apiVersion": "v1",
                                 "propagationPolicy": "Background"})
        except ClusterError as exc:
            if exc.code == 404:
                return None
            raise

    def check(self) -> dict:
        """Prove the credentials: an authenticated read, then the server's version."""
        self.request("GET", "/api/v1/namespaces", query={"limit": "1"})
        return self.request("GET", "/version") or {}


class _Final(Exception):
    """Carries a non-transient ClusterError through ``retry_call`` unretried."""

    def __init__(self, error: ClusterError):
        super().__init__(str(error))
        self.error = error
