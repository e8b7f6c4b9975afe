"""Authenticated reads: ``GET /api/v1/apps`` through the whole stack, next to the RPC floor.

Starts MAE as ``make up`` does (own database, vhost, Redis prefix and ports),
creates 30 applications as the admin, then drives ``GET /api/v1/apps`` with
20 concurrent connections — and, in the same run, alternating with it, the
bare gateway→RPC→echo floor at the same concurrency. In the steady state each
read is one Redis round trip in the gateway (token, blacklist and the cached
page, see ``gateway/routes/apps.py``); a cache miss costs one RPC to org and
one MariaDB query, as every read did before the cache.
Target (issue 3): throughput ≥ 0.7 × the floor, p99 ≤ 100 ms.
"""
from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import fresh_backends  # noqa: E402
from bench.rpc_floor import drive, ensure_vhost, free_port, line, start_services, wait_up  # noqa: E402
from scripts.stack import Stack, admin_token  # noqa: E402

CONNECTIONS = 20
APPS = 30
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 3))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", 3000))
DB = "mae_bench_api"
VHOST = "mae-bench-api"


def main() -> int:
    from shared.secretbox import generate_key

    ensure_vhost()
    db_url, amqp_uri = fresh_backends(DB, VHOST)
    run_dir = Path(tempfile.mkdtemp(prefix="mae-bench-"))
    stack = Stack(run_dir=run_dir, gateway_port=free_port(), localauth_port=free_port(), port_offset=3000,
                  env={"DB_URL": db_url, "AMQP_URI": amqp_uri,
                       "REDIS_URL": "redis://127.0.0.1:6379/2", "REDIS_PREFIX": "mae-bench",
                       "MAE_SECRET_KEY": generate_key(), "LOG_LEVEL": "WARNING"})
    floor_port = free_port()
    floor_base = f"http://127.0.0.1:{floor_port}"
    stack.start_all()
    floor_procs = start_services(floor_port)
    rounds = []
    try:
        stack.wait_ready(90)
        wait_up(f"{floor_base}/echo/warmup")
        token, _ = admin_token(stack, rotate=True)
        headers = {"Authorization": f"Bearer {token}"}
        for i in range(APPS):
            resp = requests.post(f"{stack.url}/api/v1/apps", json={"name": f"bench-{i}"}, headers=headers,
                                 timeout=10)
            assert resp.status_code == 201, resp.text
        url = f"{stack.url}/api/v1/apps"
        listed = requests.get(url, headers=headers, timeout=10).json()["items"]
        assert len(listed) == APPS, listed
        drive(url, 300, CONNECTIONS, headers, suffix=False)  # warm caches and pools
        drive(f"{floor_base}/echo", 300, CONNECTIONS)
        # The machine is shared: measure in alternation, so that a burst of other
        # work does not fall on one side of the comparison only.
        for _ in range(ROUNDS):
            apps = drive(url, REQUESTS, CONNECTIONS, headers, suffix=False)
            floor = drive(f"{floor_base}/echo", REQUESTS, CONNECTIONS)
            plain = drive(f"{floor_base}/plain", REQUESTS, CONNECTIONS)
            rounds.append((plain, floor, apps))
    finally:
        stack.stop_all()
        floor_procs.terminate()
        floor_procs.wait(timeout=20)
    tool = "wrk" if shutil.which("wrk") else "python threads"
    print(f"api_read: ~{REQUESTS} requests per measure, {CONNECTIONS} connections ({tool}), {os.cpu_count()} cores, "
          f"{ROUNDS} alternating rounds; the caller (admin) sees {APPS} applications")
    ratios, p99s = [], []
    for n, (plain, floor, apps) in enumerate(rounds, 1):
        print(f" round {n}")
        print(line("http only (baseline)", plain))
        print(line("rpc echo floor", floor))
        print(line("GET /api/v1/apps (auth)", apps))
        ratios.append(apps["rps"] / floor["rps"])
        p99s.append(apps["p99_ms"])
        print(f"  throughput vs floor: {ratios[-1]:.2f}   p99: {apps['p99_ms']:.1f} ms")
    ratio, p99 = statistics.median(ratios), statistics.median(p99s)
    print(f" median of rounds: throughput vs floor {ratio:.2f} (target >= 0.70)   "
          f"GET /apps p99 {p99:.1f} ms (target <= 100)")
    ok = ratio >= 0.7 and p99 <= 100 and not any(r[2]["errors"] for r in rounds)
    print("  result:", "meets the targets" if ok else "BELOW TARGET")
    return 0


if __name__ == "__main__":
    sys.exit(main())
