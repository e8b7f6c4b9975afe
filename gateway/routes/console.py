"""The web console: static files from ``gateway/console/``, served at ``/`` and ``/static/``.

The console is plain ES modules with no build step, so file names carry no
content hash: every answer is ``no-cache`` with an ETag, which lets browsers
revalidate cheaply (304) and still pick up a new console at once after an
upgrade. These routes are not part of the API, so they stay out of OpenAPI.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from werkzeug.wrappers import Response

from shared.web import error_response, route

CONSOLE_DIR = (Path(__file__).resolve().parent.parent / "console").resolve()

# Explicit, so the answer never depends on the host's /etc/mime.types.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}

# The console only talks to its own origin; no inline scripts, no third parties.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                                "base-uri 'none'; "
                                # mae login hands the CLI its token by a form POST to loopback.
                                "form-action 'self' http://127.0.0.1:*"),
    "X-Content-Type-Options": "nosniff",
    # The login token arrives in the URL fragment; never leak any URL to other sites.
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def resolve_static(relative: str) -> Path | None:
    """The file under CONSOLE_DIR that ``relative`` names, or None (never outside it)."""
    if not relative or "\\" in relative or "\x00" in relative:
        return None
    parts = relative.split("/")
    # Dot segments are refused outright (``..`` and hidden files alike), before any
    # filesystem call, and the resolved path is checked again in case of symlinks.
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        return None
    path = (CONSOLE_DIR / relative).resolve()
    if not path.is_relative_to(CONSOLE_DIR) or not path.is_file():
        return None
    if path.suffix not in CONTENT_TYPES:
        return None
    return path


def file_response(request, path: Path) -> Response:
    stat = path.stat()
    etag = hashlib.sha1(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:20]
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache", "ETag": f'"{etag}"'}
    if etag in request.if_none_match:
        return Response(status=304, headers=headers)
    return Response(path.read_bytes(), status=200, headers=headers,
                    content_type=CONTENT_TYPES[path.suffix])


def _not_found(request) -> Response:
    return error_response(404, "not_found", f"There is nothing at {request.path}.")


class ConsoleRoutes:
    @route("GET", "/", hidden=True)
    def console_index(self, request):
        return file_response(request, CONSOLE_DIR / "index.html")

    @route("GET", "/static/<path:relative>", hidden=True)
    def console_static(self, request, relative):
        path = resolve_static(relative)
        if path is None:
            return _not_found(request)
        return file_response(request, path)
