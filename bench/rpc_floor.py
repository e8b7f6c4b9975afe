"""The floor every later figure is measured against: gateway → RPC → service echo.

Starts ``bench/floor_services.py`` under ``nameko run`` (its own vhost), then
drives two routes with the same closed-loop load:
  * ``/plain``  — HTTP handled by the gateway alone (the in-run baseline);
  * ``/echo``   — HTTP → RPC over RabbitMQ → echo service → reply.
Prints throughput and p50/p99 latency of each and their ratio. Later issues
state their targets as ratios to the ``/echo`` floor measured in the same run.
"""
from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

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
    # A fresh vhost: queues an older MAE left there (classic, not quorum) would stop the services.
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", VHOST], capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", VHOST], capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"],
                   check=True, capture_output=True)


class Processes(list):
    def terminate(self):
        for proc in self:
            proc.terminate()

    def wait(self, timeout=None):
        for proc in self:
            proc.wait(timeout=timeout)


def start_services(port: int) -> Processes:
    """The echo service and the gateway, each in its own process, as MAE runs them."""
    nameko = str(Path(sys.executable).with_name("nameko"))
    procs = Processes()
    # The bench gateway gets the worker pool MAE's gateway gets (scripts/stack.py),
    # so that the floor is not held down by a smaller pool than the real route has.
    gateway_workers = os.environ.get("GATEWAY_MAX_WORKERS", "40")
    for target, address, workers in (
            ("bench.floor_services:EchoService", f"127.0.0.1:{free_port()}", None),
            ("bench.floor_services:BenchGateway", f"127.0.0.1:{port}", gateway_workers)):
        env = {**os.environ, "WEB_SERVER_ADDRESS": address, "LOG_LEVEL": "WARNING",
               **({"MAX_WORKERS": workers} if workers else {}),
               "AMQP_URI": f"pyamqp://guest:guest@127.0.0.1:5672/{VHOST}",
               "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
        procs.append(subprocess.Popen(
            [nameko, "run", "--config", str(ROOT / "config" / "test.yaml"), target],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return procs


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


def drive(url: str, total: int, concurrency: int, headers: dict | None = None,
          suffix: bool = True) -> dict:
    """Closed-loop load: wrk when installed (it costs the server's cores least), else threads."""
    if shutil.which("wrk"):
        return _drive_wrk(url + ("/m" if suffix else ""), total, concurrency, headers or {})
    return _drive_threads(url, total, concurrency, headers, suffix)


def _drive_wrk(url: str, total: int, concurrency: int, headers: dict) -> dict:
    # wrk runs for a duration; size it from a short probe so each run sends about `total`.
    argv = ["wrk", "-t2", f"-c{concurrency}", "--latency", "-d"]
    for key, value in headers.items():
        argv[1:1] = ["-H", f"{key}: {value}"]
    probe = _parse_wrk(subprocess.run(argv + ["2s", url], capture_output=True, text=True).stdout)
    seconds = max(3, min(30, round(total / max(probe["rps"], 1))))
    return _parse_wrk(subprocess.run(argv + [f"{seconds}s", url], capture_output=True, text=True).stdout)


def _parse_wrk(out: str) -> dict:
    def ms(text: str) -> float:
        value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    found = {m.group(1): ms(m.group(2)) for m in re.finditer(r"^\s+(50|99)%\s+(\S+)", out, re.M)}
    requests_ = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"requests": requests_, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": found["50"], "p99_ms": found["99"],
            "errors": (int(errors.group(1)) if errors else 0)
            + (sum(map(int, socket_errors.groups())) if socket_errors else 0)}


def _drive_threads(url: str, total: int, concurrency: int, headers: dict | None,
                   suffix: bool) -> dict:
    """One thread per connection, each a kept-alive ``http.client`` connection.

    ``requests`` costs the client about as much CPU per call as the server spends
    on a cached answer; on a 2-core machine that would measure the client.
    """
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    per_client = total // concurrency
    parts = urlsplit(url)
    base_path = parts.path or "/"

    def client():
        nonlocal errors
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        mine, bad = [], 0
        for i in range(per_client):
            path = f"{base_path}/m{i}" if suffix else base_path
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers or {})
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                ok = False
            mine.append(time.perf_counter() - started)
            bad += not ok
        conn.close()
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


def measure_floor(total: int = REQUESTS, concurrency: int = CONCURRENCY) -> tuple[dict, dict]:
    """(http-only baseline, http→rpc→echo floor), measured now."""
    ensure_vhost()
    port = free_port()
    proc = start_services(port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(f"{base}/echo/warmup")
        drive(f"{base}/echo", 200, concurrency)  # warm connections and pools
        plain = drive(f"{base}/plain", total, concurrency)
        echo = drive(f"{base}/echo", total, concurrency)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return plain, echo


def line(name: str, r: dict) -> str:
    return (f"  {name:26s} {r['rps']:8.1f} req/s   p50 {r['p50_ms']:6.2f} ms   "
            f"p99 {r['p99_ms']:7.2f} ms   errors {r['errors']}")


def main() -> int:
    plain, echo = measure_floor()
    tool = "wrk" if shutil.which("wrk") else "python threads"
    print(f"rpc_floor: ~{REQUESTS} requests per route, {CONCURRENCY} connections ({tool}), {os.cpu_count()} cores")
    for name, r in (("http only (baseline)", plain), ("http -> rpc -> echo", echo)):
        print(line(name, r))
    print(f"  rpc floor / baseline throughput ratio: {echo['rps'] / plain['rps']:.2f}")
    print(f"  rpc floor p50 overhead over baseline: {echo['p50_ms'] - plain['p50_ms']:.2f} ms")
    return 1 if plain["errors"] or echo["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
