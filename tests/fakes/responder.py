"""A local HTTP server that answers every request with ``respond(path) -> (status,
headers, body)`` and records each in ``hits`` (method, path, Host) — for tests of what
MAE's outbound calls do with what a remote server says. ``serve`` binds it: any free
port by default, ``tests.fakes.serve_on_allowed_port`` for one the test config's
outbound guard lets MAE reach."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _any_port(handler):
    return ThreadingHTTPServer(("127.0.0.1", 0), handler)


class Responder:
    def __init__(self, respond, delay: float = 0.0, serve=_any_port):
        self.hits = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                server.hits.append({"method": self.command, "path": self.path,
                                    "host": self.headers.get("Host")})
                if delay:
                    time.sleep(delay)
                status, headers, body = respond(self.path)
                body = body.encode() if isinstance(body, str) else body
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the caller gave up (a timeout under test): nothing to answer
                    pass

            do_GET = do_POST = do_PUT = _handle

        self.httpd = serve(Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
