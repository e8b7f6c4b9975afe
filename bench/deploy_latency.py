"""POST …/deploy → record ``succeeded``, for 50 deploys, on the whole stack with a sandbox cluster.

Starts MAE as ``make up`` does (own database, vhost, Redis prefix, ports), one
sandbox cluster (env test, pods ready after ``READY_DELAY``) and its operator.
Each deploy is timed from the POST until ``GET /records/{id}`` says succeeded
(polled every 10 ms), minus the sandbox's pod-ready delay. Baseline in the same
run: the round trip of that GET itself (the resolution of the measurement).
Target (issue 5): p50 ≤ 1 s, p99 ≤ 3 s.

Then ``ROUTES`` traffic switches between the last two versions: each timed from
``POST …/route`` until the cluster's stable Service (read from the sandbox's API with
its admin token, not through MAE) selects the new version's pods and the record says
succeeded, against the same GET baseline.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import fresh_backends  # noqa: E402
from bench.rpc_floor import free_port  # noqa: E402
from scripts.stack import Stack, admin_token  # noqa: E402

DEPLOYS = int(os.environ.get("BENCH_DEPLOYS", 50))
ROUTES = int(os.environ.get("BENCH_ROUTES", 30))
READY_DELAY = 0.2
DB = "mae_bench_deploy"
VHOST = "mae-bench-deploy"


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def start(db_url, amqp_uri):
    from shared.secretbox import generate_key

    stack = Stack(run_dir=Path(tempfile.mkdtemp(prefix="mae-bench-deploy-")), config=ROOT / "config" / "test.yaml",
                  gateway_port=free_port(), localauth_port=free_port(), port_offset=4000,
                  env={"DB_URL": db_url, "AMQP_URI": amqp_uri, "REDIS_URL": "redis://127.0.0.1:6379/2",
                       "REDIS_PREFIX": "mae-bench-deploy", "MAE_SECRET_KEY": generate_key(), "LOG_LEVEL": "WARNING",
                       "CLUSTER_TEND_SECONDS": "2"})
    stack.start_all()
    stack.wait_ready(90)
    return stack


def main() -> int:

    db_url, amqp_uri = fresh_backends(DB, VHOST)
    stack = start(db_url, amqp_uri)
    try:
        token, _ = admin_token(stack, rotate=True)
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {token}"
        api = stack.url + "/api/v1"
        cluster = stack.start_clusters(token, clusters=[("test", "test", 0)],
                             sandbox_opts={"ready_delay": READY_DELAY, "backoff": 0.3},
                             operator_opts={"batch_seconds": 0.05, "heartbeat_seconds": 5, "backoff_cap": 1})
        app = "bench"
        s.post(f"{api}/apps", json={"name": app}).raise_for_status()
        s.post(f"{api}/apps/{app}/services", json={"name": "web"}).raise_for_status()
        # Every version stays running (one Deployment each): the default namespace quota
        # (requests.cpu 4, i.e. 16 default-sized pods) would refuse the later ones, so the
        # bench app gets room for all of them, as an admin would give a busy app.
        s.put(f"{api}/apps/{app}/policy", json={"quota": {
            "pods": str(DEPLOYS * 2), "requests.cpu": str(DEPLOYS), "requests.memory": f"{DEPLOYS}Gi",
            "limits.cpu": str(DEPLOYS * 2), "limits.memory": f"{DEPLOYS * 2}Gi"}}).raise_for_status()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the namespace reaches the cluster
            ns = s.get(f"{api}/clusters/test").json().get("namespaces", {})
            if ns.get("ok"):
                break
            time.sleep(0.2)
        latencies, failed = [], 0
        probes = []
        for i in range(DEPLOYS):
            s.post(f"{api}/apps/{app}/services/web/versions",
                   json={"name": f"v{i}", "image": f"nginx:1.{i}", "port": 80, "replicas": 1}).raise_for_status()
            started = time.perf_counter()
            record_id = s.post(f"{api}/apps/{app}/services/web/versions/v{i}/deploy",
                               json={"env": "test"}).json()["record_id"]
            while True:
                t = time.perf_counter()
                record = s.get(f"{api}/records/{record_id}").json()
                probes.append(time.perf_counter() - t)
                if record["finished_at"]:
                    break
                if time.perf_counter() - started > 60:
                    break
                time.sleep(0.01)
            if record["status"] == "succeeded":
                latencies.append(time.perf_counter() - started - READY_DELAY)
            else:
                failed += 1
        routes, route_failed = route_switches(s, api, app, cluster["test"], probes)
    finally:
        stack.stop_all()
    print(f"deploy_latency: {DEPLOYS} deploys of one replica each to a sandbox cluster "
          f"(pod ready delay {READY_DELAY} s subtracted), {os.cpu_count()} cores")
    print(f"  GET /records/{{id}} round trip (baseline)  p50 {statistics.median(probes) * 1000:7.1f} ms   "
          f"p99 {pct(probes, 0.99) * 1000:7.1f} ms")
    if latencies:
        p50, p99 = statistics.median(latencies), pct(latencies, 0.99)
        print(f"  POST deploy → succeeded                  p50 {p50 * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms   "
              f"max {max(latencies) * 1000:7.1f} ms   failed {failed}")
        ok = p50 <= 1.0 and p99 <= 3.0 and not failed
    else:
        print(f"  no deploy succeeded (failed {failed})")
        ok = False
    if routes:
        print(f"  POST route → traffic on the new version  p50 {statistics.median(routes) * 1000:7.1f} ms   "
              f"p99 {pct(routes, 0.99) * 1000:7.1f} ms   max {max(routes) * 1000:7.1f} ms   failed {route_failed}")
    else:
        print(f"  no route succeeded (failed {route_failed})")
    print("  result:", "meets the targets" if ok else "BELOW TARGET")
    return 0


def route_switches(s, api, app, cluster, probes):
    """``ROUTES`` switches of web's traffic between its last two versions: seconds each."""
    kube = requests.Session()
    kube.headers["Authorization"] = f"Bearer {cluster['token']}"
    ca = cluster["ca_path"]  # per request: a session's verify loses to REQUESTS_CA_BUNDLE
    service_url = f"{cluster['url']}/api/v1/namespaces/{app}/services/web"
    times, failed = [], 0
    for i in range(ROUTES):
        version = f"v{DEPLOYS - 1 - i % 2}"
        started = time.perf_counter()
        resp = s.post(f"{api}/apps/{app}/services/web/route", json={"version": version, "env": "test"})
        if resp.status_code != 202:
            failed += 1
            continue
        record_id, done, switched = resp.json()["record_id"], False, False
        while time.perf_counter() - started < 30 and not (done and switched):
            if not switched:
                live = kube.get(service_url, verify=ca)
                switched = live.ok and live.json()["spec"]["selector"].get("mae.io/version") == version
            if not done:
                t = time.perf_counter()
                record = s.get(f"{api}/records/{record_id}").json()
                probes.append(time.perf_counter() - t)
                done = record["finished_at"] is not None
                if done and record["status"] != "succeeded":
                    break
            if not (done and switched):
                time.sleep(0.01)
        if done and switched:
            times.append(time.perf_counter() - started)
        else:
            failed += 1
    return times, failed


if __name__ == "__main__":
    sys.exit(main())
