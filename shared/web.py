"""The HTTP layer every MAE process uses: JSON in, JSON out, JSON errors.

``route`` is nameko's HTTP entrypoint with three changes: a handler may return
plain data (dict/list → JSON) or ``(status, data)``/``(status, headers, data)``;
a ``MaeError`` becomes the API's error body through the one table in
``shared.errors``; and anything else becomes a logged, opaque 500.
``ApiServer`` answers unknown paths, wrong methods and oversized bodies with
the same JSON error shape before any worker is spawned, and lets the container's
request guards (the gateway's write rate limit) refuse a request there too.
"""
from __future__ import annotations

import io
import json
import logging

from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound as WerkzeugNotFound
from werkzeug.wrappers import Request, Response

from shared.errors import EXPECTED, MaeError, error_body, http_status

log = logging.getLogger(__name__)

JSON = "application/json"


def json_response(status: int, data, headers: dict | None = None) -> Response:
    return Response(json.dumps(data, default=str), status=status,
                    headers=headers, mimetype=JSON)


def error_response(status: int, code: str, message: str, details: dict | None = None,
                   headers: dict | None = None) -> Response:
    return json_response(status, error_body(code, message, details), headers)


def response_for_error(exc: Exception) -> Response:
    if isinstance(exc, MaeError):
        headers = {}
        retry_after = exc.details.get("retry_after") if exc.details else None
        if retry_after is not None:
            headers["Retry-After"] = str(int(retry_after))
        return error_response(http_status(exc), exc.code, exc.message, exc.details, headers)
    log.error("unhandled error in request: %r", exc, exc_info=exc)
    return error_response(500, "internal", "Something went wrong on our side; it has been logged.")


def streamed(request, chunks, content_type: str = "text/plain; charset=utf-8", status: int = 200) -> Response:
    """An answer sent as ``chunks`` (an iterator of bytes) come: each chunk is written at
    once (chunked encoding; eventlet would otherwise hold writes until 4 KiB gathered),
    after the worker has returned. When the client leaves, the server closes ``chunks``
    (a generator's ``finally`` runs), so whatever feeds it can let go of its upstream."""
    request.environ["eventlet.minimum_write_chunk_size"] = 0
    return Response(chunks, status=status, content_type=content_type, direct_passthrough=True,
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


SECURITY_HEADERS = [("X-Content-Type-Options", "nosniff")]
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


def _with_security_headers(environ, start_response):
    """Every answer says ``nosniff`` (a JSON error is never sniffed into HTML), and HSTS when
    it was served over HTTPS (directly, or by a TLS-terminating proxy that says so)."""
    https = environ.get("wsgi.url_scheme") == "https" or \
        environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[0].strip().lower() == "https"
    extra = SECURITY_HEADERS + ([HSTS] if https else [])

    def start(status, headers, exc_info=None):
        present = {name.lower() for name, _ in headers}
        return start_response(status, headers + [h for h in extra if h[0].lower() not in present], exc_info)
    return start


class ApiWsgiApp(WsgiApp):
    def __call__(self, environ, start_response):
        start_response = _with_security_headers(environ, start_response)
        limit = int(self.server.container.config.get("MAX_BODY_BYTES", 1 << 20))
        length = None
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            # No Content-Length: werkzeug would read the body as empty. eventlet decodes
            # the chunks; read at most one byte past the limit and hand on what was read.
            body = environ["wsgi.input"].read(limit + 1)
            length = len(body)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(length)
            del environ["HTTP_TRANSFER_ENCODING"]
        request = Request(environ, shallow=True)
        length = request.content_length if length is None else length
        if length is not None and length > limit:
            rv = error_response(413, "payload_too_large",
                                f"The request body is larger than {limit} bytes.",
                                {"limit": limit})
            return rv(environ, start_response)
        # Caps chunked bodies too: werkzeug raises RequestEntityTooLarge on read.
        request.max_content_length = limit
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
            request.path_values = values
            rv = self._guard(request) or provider.handle_request(request)
        except MethodNotAllowed as exc:
            rv = error_response(405, "method_not_allowed",
                                f"{request.method} is not allowed on {request.path}.",
                                {"allowed": sorted(exc.valid_methods or [])},
                                {"Allow": ", ".join(sorted(exc.valid_methods or []))})
        except WerkzeugNotFound:
            rv = error_response(404, "not_found", f"There is nothing at {request.path}.")
        except HTTPException as exc:
            rv = error_response(exc.code or 400, "bad_request", exc.description or exc.name)
        return rv(environ, start_response)


    def _guard(self, request):
        """The first refusal of the container's request guards (dependencies with a
        ``guard_request(request)``, e.g. the gateway's rate limit), before any worker."""
        guards = getattr(self, "_guards", None)
        if guards is None:
            guards = self._guards = [d for d in self.server.container.dependencies
                                     if callable(getattr(d, "guard_request", None))]
        for guard in guards:
            refusal = guard.guard_request(request)
            if refusal is not None:
                return refusal
        return None


# Connections the kernel queues before the server accepts them: eventlet.listen's default of 50
# reset clients of a burst (bench/scale.py: 4 of 200 simultaneous deploys).
LISTEN_BACKLOG = 1024


class ApiServer(WebServer):
    def get_wsgi_app(self):
        return ApiWsgiApp(self)

    def get_wsgi_server(self, sock, wsgi_app, **kwargs):
        sock.listen(LISTEN_BACKLOG)  # listen() again on a listening socket only resizes its queue
        return super().get_wsgi_server(sock, wsgi_app, **kwargs)


class Route(HttpRequestHandler):
    server = ApiServer()

    def __init__(self, method, url, expected_exceptions=EXPECTED, **meta):
        super().__init__(method, url, expected_exceptions=expected_exceptions)
        # Documentation for the OpenAPI document (summary, tags, auth, ...).
        self.meta = meta

    def handle_result(self, event, worker_ctx, result, exc_info):
        # Runs in the worker's green thread, so the access line carries its call id.
        request = worker_ctx.args[0] if worker_ctx.args else None
        if request is not None:
            if exc_info is not None:
                status = self.response_from_exception(exc_info[1]).status_code
            else:
                status = status_of(result)
            quiet = request.path in QUIET_PATHS and status < 400
            log.log(logging.DEBUG if quiet else logging.INFO, "%s %s %s",
                    request.method, request.path, status,
                    extra={"http_method": request.method, "path": request.path,
                           "status": status, "remote_addr": request.remote_addr})
        return super().handle_result(event, worker_ctx, result, exc_info)

    def response_from_result(self, result):
        if isinstance(result, Response):
            return result
        headers = None
        status = 200
        if isinstance(result, tuple):
            if len(result) == 3:
                status, headers, payload = result
            else:
                status, payload = result
        else:
            payload = result
        if payload is None:
            return Response(status=status, headers=headers)
        if isinstance(payload, str):
            return Response(payload, status=status, headers=headers)
        return json_response(status, payload, headers)

    def response_from_exception(self, exc):
        from werkzeug.exceptions import RequestEntityTooLarge

        if isinstance(exc, RequestEntityTooLarge):
            return error_response(413, "payload_too_large", "The request body is too large.")
        return response_for_error(exc)


route = Route.decorator

# Probes and scrapes are logged only when they fail.
QUIET_PATHS = {"/healthz", "/readyz", "/metrics"}


def status_of(result) -> int:
    """The HTTP status a route's result becomes (a ``Response``, ``(status, ...)`` or 200)."""
    if isinstance(result, Response):
        return result.status_code
    if isinstance(result, tuple) and result and isinstance(result[0], int):
        return result[0]
    return 200


def read_json(request, required: bool = True):
    """The request's JSON body, or ``BadRequest`` with a message a person understands."""
    return parse_json(request.get_data(cache=True), required)


def parse_json(raw, required: bool = True):
    """``read_json`` of a body already read (bytes or str): a service parsing the raw
    body the gateway handed on gives the same answers the gateway would."""
    from shared.errors import BadRequest

    if not raw:
        if required:
            raise BadRequest("A JSON body is required.")
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}.")


def parse_object(raw, required: bool = True) -> dict:
    """``read_object`` of a body already read."""
    from shared.errors import BadRequest

    body = parse_json(raw, required)
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    return body


def read_object(request, required: bool = True) -> dict:
    """The request's body as a JSON object (``{}`` when optional and absent)."""
    from shared.errors import BadRequest

    body = read_json(request, required)
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    return body
