"""Local HTTP stand-ins for what lies outside MAE (Feishu, DingTalk, webhooks, Aliyun ECS).

Each is a real HTTP server on 127.0.0.1 and a free port of ``PORTS``. It checks what it
receives the way the real service does (signatures above all), records every
request, and can be told to misbehave: fail the next N requests with a given
answer, or hang for a while before answering.

``PORTS`` lies below the kernel's ephemeral range (where MAE's own test processes and
sandboxes get their ports), and config/test.yaml's ``OUTBOUND_ALLOW`` opens exactly it on
127.0.0.1: MAE's outbound guard (shared/outbound/) lets channels and CI links reach these
stand-ins and nothing else on the machine.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
import errno
import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


# config/test.yaml: OUTBOUND_ALLOW "127.0.0.1:18100-18899"
PORTS = range(18100, 18900)


def serve_on_allowed_port(handler, host: str = "127.0.0.1", server_class=ThreadingHTTPServer):
    """``server_class((host, port), handler)`` on a free port of ``PORTS``."""
    candidates = random.sample(PORTS, len(PORTS))
    for port in candidates:
        try:
            return server_class((host, port), handler)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    raise OSError(errno.EADDRINUSE, f"no free port in {PORTS.start}-{PORTS.stop - 1}")


@dataclass
class Received:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes
    raw_query: str = ""
    accepted: bool = False
    answer: object = None

    def json(self):
        return json.loads(self.body or b"null")


@dataclass
class Misbehaviour:
    remaining: int
    status: int = 500
    body: object = field(default_factory=lambda: {"error": "injected failure"})
    hang: float = 0.0


class FakeHTTPServer(ABC):
    """Subclasses implement ``answer(request) -> (status, body)``."""

    def __init__(self):
        self.received: list[Received] = []
        self._misbehaviours: list[Misbehaviour] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Received(
                    method=self.command, path=parts.path,
                    query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body, raw_query=parts.query,
                )
                status, answer = fake._dispatch(request)
                payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json;charset=utf-8")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_GET = do_POST = do_PUT = _handle

        self.httpd = serve_on_allowed_port(Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # -- life cycle ---------------------------------------------------------
    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- misbehaviour -------------------------------------------------------
    def fail_next(self, times: int, status: int = 500, body=None, hang: float = 0.0):
        """The next ``times`` requests get ``status``/``body`` (after ``hang`` seconds)."""
        with self._lock:
            self._misbehaviours.append(Misbehaviour(
                times, status, body if body is not None else {"error": "injected failure"}, hang))

    def fail_always(self, status: int = 500, body=None):
        self.fail_next(10 ** 9, status, body)

    def hang_next(self, times: int, seconds: float):
        self.fail_next(times, 504, {"error": "hung"}, hang=seconds)

    def _dispatch(self, request: Received):
        with self._lock:
            self.received.append(request)
            trouble = next((m for m in self._misbehaviours if m.remaining > 0), None)
            if trouble is not None:
                trouble.remaining -= 1
        if trouble is not None:
            if trouble.hang:
                time.sleep(trouble.hang)
            request.answer = trouble.body
            return trouble.status, trouble.body
        status, answer = self.answer(request)
        request.answer = answer
        request.accepted = 200 <= status < 300 and self.accepted(answer)
        return status, answer

    @abstractmethod
    def answer(self, request: Received):
        """``(status, body)`` for a request, as the real service would answer."""

    def accepted(self, answer) -> bool:
        return True

    @property
    def accepted_requests(self) -> list[Received]:
        return [r for r in self.received if r.accepted]

    def wait_for(self, count: int = 1, timeout: float = 10.0, accepted: bool = True):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.accepted_requests if accepted else self.received
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(f"expected {count} requests, got {len(self.received)} "
                             f"({len(self.accepted_requests)} accepted)")
