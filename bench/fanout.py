"""Namespace fan-out: registering a cluster when 1,000 applications exist.

Starts MAE as ``make up`` does (own database ``mae_bench_fanout``, vhost, Redis prefix
and ports). Set-up inserts the 1,000 applications straight into the org service's table
``org_applications`` of the bench's own database (through the API it is 1,000 POSTs of
set-up time for nothing measured); no cluster is registered then. Measured: from ``POST /api/v1/clusters`` for a fresh sandbox until the
sandbox holds all 1,000 namespaces (polled with the official client) — registration
checks the credentials, the ``cluster.registered`` event asks org for every application
name, and the cluster service creates the namespaces with ``FANOUT_CONCURRENCY`` green
threads. Baseline in the same run: the same 1,000 namespace creations straight against
another fresh sandbox with the official kubernetes client at the same concurrency.
Target (issue 4): ≤ 20 s.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import fresh_backends  # noqa: E402
from bench.rpc_floor import free_port  # noqa: E402
from scripts.stack import Stack, admin_token  # noqa: E402
from services.cluster.domain.fanout import FANOUT_CONCURRENCY  # noqa: E402

APPS = int(os.environ.get("BENCH_APPS", 1000))
DB = "mae_bench_fanout"
VHOST = "mae-bench-fanout"
SANDBOX_OPTS = {"no_persist": True, "ready_delay": 0.2}
PREFIX = "fan"


def api_client(info):
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=info["kubeconfig"], client_configuration=cfg)
    cfg.connection_pool_maxsize = FANOUT_CONCURRENCY
    return client.CoreV1Api(client.ApiClient(cfg))


def count_namespaces(core) -> int:
    return sum(1 for ns in core.list_namespace(label_selector="app.kubernetes.io/managed-by=mae").items
               if ns.metadata.name.startswith(PREFIX + "-"))


def baseline(info) -> float:
    """1,000 namespaces straight from the official client, FANOUT_CONCURRENCY at a time."""
    core = api_client(info)
    body = lambda n: {"apiVersion": "v1", "kind": "Namespace",  # noqa: E731
                      "metadata": {"name": n, "labels": {"app.kubernetes.io/managed-by": "mae", "mae.io/app": n}}}
    started = time.perf_counter()
    with ThreadPoolExecutor(FANOUT_CONCURRENCY) as pool:
        list(pool.map(lambda i: core.create_namespace(body(f"{PREFIX}-{i:04d}")), range(APPS)))
    elapsed = time.perf_counter() - started
    assert count_namespaces(core) == APPS
    return elapsed


def insert_apps(db_url: str) -> None:
    from sqlalchemy import create_engine, insert

    from services.org.models import Application
    from shared.timeutil import utcnow

    engine = create_engine(db_url)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(insert(Application), [
            {"name": f"{PREFIX}-{i:04d}", "display_name": f"Fan {i}", "description": "", "created_by": "bench",
             "created_at": now, "updated_at": now} for i in range(APPS)])
    engine.dispose()


def main() -> int:
    from shared.secretbox import generate_key

    db_url, amqp_uri = fresh_backends(DB, VHOST)
    insert_apps(db_url)
    stack = Stack(run_dir=Path(tempfile.mkdtemp(prefix="mae-bench-fanout-")), config=ROOT / "config" / "test.yaml",
                  gateway_port=free_port(), localauth_port=free_port(), port_offset=3100,
                  env={"DB_URL": db_url, "AMQP_URI": amqp_uri,
                       "REDIS_URL": "redis://127.0.0.1:6379/2", "REDIS_PREFIX": "mae-bench-fanout",
                       "MAE_SECRET_KEY": generate_key(), "LOG_LEVEL": "WARNING"})
    try:
        # Baseline first, on its own sandbox, before MAE's processes compete for the 2 cores.
        direct = baseline(stack.start_sandbox("direct", 0, **SANDBOX_OPTS))
        stack.stop("sandbox-direct")
        stack.start_all()
        stack.wait_ready(90)
        token, _ = admin_token(stack, rotate=True)
        info = stack.start_sandbox("fresh", 0, **SANDBOX_OPTS)
        core = api_client(info)
        body = {"name": "fresh", "env": "test", "server": info["url"], "token": info["token"],
                "ca_cert": Path(info["ca_path"]).read_text()}
        started = time.perf_counter()
        resp = requests.post(f"{stack.url}/api/v1/clusters", json=body,
                             headers={"Authorization": f"Bearer {token}"}, timeout=30)
        resp.raise_for_status()
        registered = time.perf_counter() - started
        have, deadline = 0, started + 120
        while have < APPS and time.perf_counter() < deadline:
            time.sleep(0.2)
            have = count_namespaces(core)
        mae = time.perf_counter() - started
    finally:
        stack.stop_all()
    print(f"fanout: {APPS} applications, concurrency {FANOUT_CONCURRENCY}, {os.cpu_count()} cores")
    print(f"  official client, {APPS} creates (baseline)     {direct:7.2f} s   {APPS / direct:7.0f} ns/s")
    print(f"  MAE: POST /clusters → all namespaces exist    {mae:7.2f} s   {have / mae:7.0f} ns/s"
          f"   (POST answered after {registered:.2f} s; {have}/{APPS} present)")
    print(f"  vs baseline: {mae / direct:.2f}x   target: <= 20 s")
    print("  result:", "meets the target" if have == APPS and mae <= 20 else "BELOW TARGET")
    return 0


if __name__ == "__main__":
    sys.exit(main())
