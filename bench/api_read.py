"""Authenticated reads: ``GET /api/v1/apps`` through the whole stack, next to the RPC floor.

Starts MAE as ``make up`` does (own database, vhost, Redis prefix and ports),
creates 30 applications as the admin, then drives ``GET /api/v1/apps`` with
20 concurrent connections (token check against the Redis cache and blacklist,
one RPC to org, one MariaDB query) — and, in the same run, the bare
gateway→RPC→echo floor at the same concurrency.
Target (issue 3): throughput ≥ 0.7 × the floor, p99 ≤ 100 ms.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import fresh_backends  # noqa: E402
from bench.rpc_floor import drive, free_port, line, measure_floor  # noqa: E402
from scripts.stack import Stack, admin_token  # noqa: E402

CONNECTIONS = 20
REQUESTS = int(os.environ.get("BENCH_REQUESTS", 3000))
DB = "mae_bench_api"
VHOST = "mae-bench-api"


def main() -> int:
    from shared.secretbox import generate_key

    db_url, amqp_uri = fresh_backends(DB, VHOST)
    run_dir = Path(tempfile.mkdtemp(prefix="mae-bench-"))
    stack = Stack(run_dir=run_dir, gateway_port=free_port(), localauth_port=free_port(), port_offset=3000,
                  env={"DB_URL": db_url, "AMQP_URI": amqp_uri,
                       "REDIS_URL": "redis://127.0.0.1:6379/2", "REDIS_PREFIX": "mae-bench",
                       "MAE_SECRET_KEY": generate_key(), "LOG_LEVEL": "WARNING"})
    stack.start_all()
    try:
        stack.wait_ready(90)
        token, _ = admin_token(stack, rotate=True)
        headers = {"Authorization": f"Bearer {token}"}
        for i in range(30):
            requests.post(f"{stack.url}/api/v1/apps", json={"name": f"bench-{i}"}, headers=headers, timeout=10)
        url = f"{stack.url}/api/v1/apps"
        drive(url, 300, CONNECTIONS, headers, suffix=False)  # warm caches and pools
        apps = drive(url, REQUESTS, CONNECTIONS, headers, suffix=False)
    finally:
        stack.stop_all()
    plain, floor = measure_floor(REQUESTS, CONNECTIONS)
    ratio = apps["rps"] / floor["rps"]
    import shutil

    tool = "wrk" if shutil.which("wrk") else "python threads"
    print(f"api_read: ~{REQUESTS} requests per measure, {CONNECTIONS} connections ({tool}), {os.cpu_count()} cores")
    print(line("http only (baseline)", plain))
    print(line("rpc echo floor", floor))
    print(line("GET /api/v1/apps (auth)", apps))
    print(f"  throughput vs floor: {ratio:.2f}  (target >= 0.70)   p99: {apps['p99_ms']:.1f} ms (target <= 100)")
    ok = ratio >= 0.7 and apps["p99_ms"] <= 100 and not apps["errors"]
    print("  result:", "meets the targets" if ok else "BELOW TARGET")
    return 0


if __name__ == "__main__":
    sys.exit(main())
