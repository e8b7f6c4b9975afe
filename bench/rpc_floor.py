"""The floor every later figure is measured against: gateway → RPC → service echo.

Starts ``bench/floor_services.py`` under ``nameko run`` (its own vhost), then
drives two routes with the same closed-loop load:
  * ``/plain``  — HTTP handled by the gateway alone (the in-run baseline);
  * ``/echo``   — HTTP → RPC over RabbitMQ → echo service → reply.
Prints throughput and p50/p99 latency of each and their ratio. Later issues
state their targets as ratios to the ``/echo`` floor measured in the same run.
"""
from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
VHOST = "mae-bench"
REQUESTS = int(os.environ.get("BENCH_REQUESTS", 2000))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", 8))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_vhost() -> None:
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", VHOST], capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"],
                   check=True, capture_output=True)


def start_services(port: int) -> subprocess.Popen:
    env = {**os.environ, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}", "LOG_LEVEL": "WARNING",
           "AMQP_URI": f"pyamqp://guest:guest@127.0.0.1:5672/{VHOST}", "MAX_WORKERS": "20",
           "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    nameko = str(Path(sys.executable).with_name("nameko"))
    return subprocess.Popen(
        [nameko, "run", "--config", str(ROOT / "config" / "test.yaml"),
         "bench.floor_services:EchoService", "bench.floor_services:BenchGateway"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"bench services did not come up at {url}")


def drive(url: str, total: int, concurrency: int) -> dict:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    per_client = total // concurrency

    def client():
        nonlocal errors
        session = requests.Session()
        mine, bad = [], 0
        for i in range(per_client):
            started = time.perf_counter()
            resp = session.get(f"{url}/m{i}", timeout=30)
            mine.append(time.perf_counter() - started)
            bad += resp.status_code != 200
        with lock:
            latencies.extend(mine)
            errors += bad

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main() -> int:
    ensure_vhost()
    port = free_port()
    proc = start_services(port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(f"{base}/echo/warmup")
        drive(f"{base}/echo", 200, CONCURRENCY)  # warm connections and pools
        plain = drive(f"{base}/plain", REQUESTS, CONCURRENCY)
        echo = drive(f"{base}/echo", REQUESTS, CONCURRENCY)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    print(f"rpc_floor: {REQUESTS} requests per route, {CONCURRENCY} concurrent clients, {os.cpu_count()} cores")
    for name, r in (("http only (baseline)", plain), ("http -> rpc -> echo", echo)):
        print(f"  {name:22s} {r['rps']:8.1f} req/s   p50 {r['p50_ms']:6.2f} ms   "
              f"p99 {r['p99_ms']:7.2f} ms   errors {r['errors']}")
    print(f"  rpc floor / baseline throughput ratio: {echo['rps'] / plain['rps']:.2f}")
    print(f"  rpc floor p50 overhead over baseline: {echo['p50_ms'] - plain['p50_ms']:.2f} ms")
    return 1 if plain["errors"] or echo["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
