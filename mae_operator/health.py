"""``--health-port``: the operator's liveness and readiness for the kubelet.

* ``/healthz`` — alive: every watcher thread runs. A dead thread (it should never die: its
  loop catches and backs off) means a restart helps.
* ``/readyz`` — working: every kind has been listed at least once, and MAE took a post
  (reports or a heartbeat) within ``stale_seconds``. Not ready while MAE or the API server
  is away tells the person looking at ``kubectl get pods`` where the trouble is; it does not
  restart anything (readiness never does).

A plain ``http.server`` in a daemon thread: the operator has no web framework and needs none.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Health:
    def __init__(self, watchers, sender, stale_seconds: float):
        self.watchers, self.sender, self.stale_seconds = watchers, sender, stale_seconds

    def alive(self) -> tuple[bool, dict]:
        dead = [w.kind for w in self.watchers if not w.is_alive()]
        return not dead, {"dead_watchers": dead}

    def ready(self) -> tuple[bool, dict]:
        unlisted = [w.kind for w in self.watchers if not w.lists]
        since = None if not self.sender.last_post else round(time.monotonic() - self.sender.last_post, 1)
        fresh = since is not None and since <= self.stale_seconds
        return not unlisted and fresh and self.alive()[0], {
            "not_listed_yet": unlisted, "seconds_since_mae_took_a_post": since}


def serve(health: Health, port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            check = {"/healthz": health.alive, "/readyz": health.ready}.get(self.path)
            if check is None:
                self.send_error(404)
                return
            ok, details = check()
            body = json.dumps({"ok": ok, **details}).encode()
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # probes every few seconds are not news
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
