"""The hollow node's kubelet API: ``GET /containerLogs/{namespace}/{pod}/{container}`` over HTTPS,
so the REAL API server's ``pods/log`` (which proxies to the kubelet of the pod's node) works.

The API server validates the request (``PodLogOptions``, the container name) and connects to the
node's preferred address (``--kubelet-preferred-address-types=InternalIP``: 127.0.0.1 here) on the
port its Node status advertises (``daemonEndpoints.kubeletEndpoint.Port``).  Without
``--kubelet-certificate-authority`` it does not verify this server's certificate, and without
kubelet client certificates it presents none, so neither side authenticates - as in a kubeadm
cluster with the kubelet's authentication off; acceptable for a test tier on 127.0.0.1.

The lines are those of the sandbox (``sandbox/podlogs.py``), read from the node's runtime state;
errors are the kubelet's words with its status 400 (404 for a pod this node does not run).
"""
from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from sandbox import podlogs
from sandbox.certs import ensure_tls

log = logging.getLogger("hollow-node.logs")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hollow-kubelet"
    node = None  # set on the subclass made per server

    def log_message(self, fmt, *args) -> None:  # noqa: D401 - quiet: the node's log is for the node
        log.debug("%s " + fmt, self.address_string(), *args)

    def _plain(self, code: int, text: str) -> None:
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        url = urlsplit(self.path)
        if url.path in ("/healthz", "/livez", "/readyz"):
            return self._plain(200, "ok")
        parts = [unquote(p) for p in url.path.split("/") if p]
        if len(parts) != 4 or parts[0] != "containerLogs":
            return self._plain(404, "404 page not found")
        _, ns, name, container = parts
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            opts = podlogs.parse_options(query, name)
        except podlogs.LogOptionsError as exc:
            return self._plain(400, exc.message)
        found = self.node.log_source(ns, name)
        if found is None:
            return self._plain(404, f'pod "{name}" does not exist')
        rt, pod = found
        try:
            run = podlogs.select_run(pod, container, opts.previous)
        except podlogs.LogUnavailable as exc:
            return self._plain(400, str(exc))
        run.start_ns = self.node.start_ns_of(rt, run.container_id) or run.start_ns
        reader = podlogs.LogReader(run, opts, self.node.log_interval)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self._chunk(reader.read())
            while opts.follow and run.end_ns is None and not self.node.stopping.is_set():
                due = reader.next_due()
                if due is None:
                    break
                time.sleep(min(max(due - time.time(), 0.002), 0.25))
                live = self.node.still_runs(rt, run.container_id)
                self._chunk(reader.advance(ended_ns=None if live else time.time_ns()))
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionError, ssl.SSLError, OSError):
            self.close_connection = True


class KubeletServer:
    """Serves the node's container logs on 127.0.0.1 (``port`` 0: a free one, see ``.port``)."""

    def __init__(self, node, state_dir: str, port: int = 0):
        tls = ensure_tls(state_dir, f"{node.name}-kubelet")
        handler = type("Handler", (_Handler,), {"node": node})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls.server_cert, tls.server_key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="kubelet-api", daemon=True)

    def start(self) -> "KubeletServer":
        self.thread.start()
        log.info("kubelet API (container logs) on https://127.0.0.1:%s", self.port)
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def state_dir_for(kubeconfig: str, name: str) -> str:
    path = os.path.join(os.path.dirname(os.path.abspath(kubeconfig)), f"{name}-kubelet")
    os.makedirs(path, exist_ok=True)
    return path
