"""Pod log streaming: one follower through MAE vs reading the cluster's ``pods/log`` directly.

Starts MAE as ``make up`` does (own database ``mae_bench_logs``, vhost, Redis prefix and
ports) with one sandbox cluster whose containers print ``--log-rate`` simulated
access-log lines a second (a running container's history holds the last 100,000 lines),
registered with MAE with its operator. One version with one pod is deployed through
MAE. Then, in the same run, alternating ``ROUNDS`` times and the same way (``follow``, from
the start of the pod's log — a 100,000-line history — until ``LINES`` lines came, timed
from the request; the median round of each is reported):

* **direct** (baseline): the official client's ``read_namespaced_pod_log(follow=True,
  _preload_content=False)`` with the cluster's admin kubeconfig;
* **through MAE**: ``GET /api/v1/apps/{app}/services/{svc}/versions/{ver}/logs?follow=1``
  as the app's owner — gateway → cluster service (ticket, internal stream) → cluster —
  each line prefixed with the pod's name (counted in MAE's bytes; the lines compare).

Goal (issue 21): through MAE ≥ 0.5 × direct, in lines per second.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_stack  # noqa: E402
from scripts.stack import admin_token  # noqa: E402

DB = "mae_bench_logs"
VHOST = "mae-bench-logs"
APP, SVC, VER = "logbench", "web", "v1"
LOG_RATE = 20_000      # lines a second per container
WARMUP = 6.0           # seconds: the pod's history fills (100,000 lines at LOG_RATE)
LINES = 100_000        # a follower reads this many: the history as fast as it goes, then live lines
ROUNDS = 3             # direct and MAE alternate; the median of each is reported


def count(chunks, started: float) -> tuple[int, int, float]:
    """(lines, bytes, seconds) of ``chunks`` read until ``LINES`` lines came (or they ended)."""
    lines = size = 0
    for chunk in chunks:
        size += len(chunk)
        lines += chunk.count(b"\n")
        if lines >= LINES:
            break
    return lines, size, time.monotonic() - started


def direct(kubeconfig: str, pod: str) -> tuple[int, int, float]:
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        started = time.monotonic()
        resp = client.CoreV1Api(api).read_namespaced_pod_log(pod, APP, follow=True, _preload_content=False)
        try:
            return count(resp.stream(64 * 1024), started)
        finally:
            resp.close()


def through_mae(base: str, token: str) -> tuple[int, int, float]:
    import requests

    started = time.monotonic()
    with requests.get(f"{base}/api/v1/apps/{APP}/services/{SVC}/versions/{VER}/logs", params={"follow": 1},
                      headers={"Authorization": f"Bearer {token}"}, stream=True, timeout=(5, 30)) as resp:
        resp.raise_for_status()
        return count(resp.raw.stream(64 * 1024, decode_content=False), started)


def wait(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise TimeoutError(what)


def main() -> int:
    import requests

    stack = bench_stack(DB, VHOST, 3300, "mae-bench-logs-")
    try:
        stack.start_all()
        stack.wait_ready(90)
        token, _ = admin_token(stack, rotate=True)
        [info] = stack.start_clusters(
            token, clusters=[("logs", "test", 0)],
            sandbox_opts={"no_persist": True, "ready_delay": 0.3, "log_rate": LOG_RATE},
            operator_opts={"batch_seconds": 0.5, "heartbeat_seconds": 60}).values()
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {token}"
        url = f"{stack.url}/api/v1"
        assert api.post(f"{url}/apps", json={"name": APP}).status_code == 201
        assert api.post(f"{url}/apps/{APP}/services", json={"name": SVC}).status_code == 201
        assert api.post(f"{url}/apps/{APP}/services/{SVC}/versions",
                        json={"name": VER, "image": "nginx:1.25", "port": 80, "replicas": 1}).status_code == 201

        def deployed():
            sent = api.post(f"{url}/apps/{APP}/services/{SVC}/versions/{VER}/deploy", json={"env": "test"})
            return sent.json()["record_id"] if sent.status_code == 202 else None
        record_id = wait(deployed, 60, "the namespace, then the deploy")
        record = wait(lambda: (lambda r: r if r["finished_at"] else None)(api.get(f"{url}/records/{record_id}").json()),
                      90, "the deploy")
        assert record["status"] == "succeeded", record
        [pod] = api.get(f"{url}/apps/{APP}/services/{SVC}/versions/{VER}/pods").json()["items"]
        time.sleep(WARMUP)
        runs = {"direct": [], "mae": []}
        for _ in range(ROUNDS):
            runs["direct"].append(direct(info["kubeconfig"], pod["name"]))
            runs["mae"].append(through_mae(stack.url, token))
    finally:
        stack.stop_all()
    (base_lines, base_bytes, base_s), (mae_lines, mae_bytes, mae_s) = \
        (sorted(runs[k], key=lambda r: r[0] / r[2])[ROUNDS // 2] for k in ("direct", "mae"))
    base_rate, mae_rate = base_lines / base_s, mae_lines / mae_s
    ratio = mae_rate / base_rate if base_rate else 0.0
    print(f"log_stream: one follower of one pod reading {LINES} lines from the start of its log with follow "
          f"({LOG_RATE} lines/s written), median of {ROUNDS}, alternating")
    print(f"  direct pods/log (official client, baseline)  {base_rate:10.0f} lines/s  {base_bytes / base_s / 1e6:6.2f} MB/s"
          f"  ({base_s:.2f} s)")
    print(f"  through MAE (gateway → cluster service)      {mae_rate:10.0f} lines/s  {mae_bytes / mae_s / 1e6:6.2f} MB/s"
          f"  ({mae_s:.2f} s; each line prefixed with the pod's name)")
    print(f"  ratio: {ratio:.2f}x   target: >= 0.5x")
    print("  result:", "meets the target" if ratio >= 0.5 else "BELOW TARGET")
    return 0


if __name__ == "__main__":
    sys.exit(main())
