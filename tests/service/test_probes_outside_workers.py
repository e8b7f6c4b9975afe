"""Probes answer while every worker is busy, and readiness follows the broker connection.

A service with one worker slot, that slot held by a slow call: the kubelet's /healthz and
/readyz still answer at once (they run in the probe pool, shared.probes). The service's
broker connection goes through a cuttable proxy: cut, /readyz says 503 naming the broker
while /healthz stays 200 (alive, not ready); restored, ready again.
"""
from __future__ import annotations

import subprocess
import time
from urllib.parse import urlsplit, urlunsplit

import eventlet
import requests
from eventlet.event import Event

from shared.service import ServiceBase
from shared.web import LISTEN_BACKLOG, route
from tests.conftest import free_port
from tests.tcp_proxy import Proxy
from tests.waiting import waiter

wait_for = waiter(timeout=30, interval=0.2)

HELD = Event()


class BusyService(ServiceBase):
    name = "probe_busy"

    @route("GET", "/slow")
    def slow(self, request):
        HELD.wait()
        return {"done": True}


def _through(proxy: Proxy, amqp_uri: str) -> str:
    parts = urlsplit(amqp_uri)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


def test_probes_answer_while_every_worker_is_busy_and_readiness_follows_the_broker(container_factory, config):
    global HELD
    HELD = Event()
    broker = Proxy(int(urlsplit(config["AMQP_URI"]).port or 5672))
    port = free_port()
    container = container_factory(BusyService, {**config, "max_workers": 1,
                                                "AMQP_URI": _through(broker, config["AMQP_URI"]),
                                                "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"})
    container.start()
    base = f"http://127.0.0.1:{port}"
    # A burst of clients queues rather than being reset: the listen backlog is shared.web's, not 50.
    listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout.split()
    assert int(listening[2]) == LISTEN_BACKLOG, listening  # State Recv-Q Send-Q(backlog) ...
    slow = eventlet.spawn(requests.get, f"{base}/slow", timeout=30)
    try:
        wait_for(lambda: len(container._worker_threads) >= 1, 5, what="the slow call to hold the only worker")
        for path in ("/healthz", "/readyz", "/metrics"):
            started = time.monotonic()
            answer = requests.get(base + path, timeout=3)
            assert answer.status_code == 200, (path, answer.text)
            # (a queued probe would wait for the slow call, 30 s; a loaded machine takes a second or two)
            assert time.monotonic() - started < 5, path
        assert requests.get(f"{base}/readyz", timeout=3).json()["checks"]["broker"] == {"ok": True}

        broker.cut()
        def not_ready():
            answer = requests.get(f"{base}/readyz", timeout=3)
            return [answer] if answer.status_code == 503 else None  # a 503 Response is falsy
        [answer] = wait_for(not_ready, 20, what="/readyz to notice the broker is gone")
        assert answer.json()["checks"]["broker"]["ok"] is False
        assert "broker" in answer.json()["checks"]["broker"]["error"]
        assert answer.json()["checks"]["database"]["ok"] is True
        assert requests.get(f"{base}/healthz", timeout=3).status_code == 200  # alive: not restarted

        broker.restore()
        wait_for(lambda: requests.get(f"{base}/readyz", timeout=3).status_code == 200,
                 what="/readyz to be green once the broker is back")
    finally:
        HELD.send()
        assert slow.wait().json() == {"done": True}
        container.stop()  # its broker connections end first, so no proxy thread is left reading
        broker.cut()
