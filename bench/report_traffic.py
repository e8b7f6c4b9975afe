"""What one rolling update costs the link: the operator's reports vs a remote watch.

Starts MAE as ``make up`` does (own database ``mae_bench_traffic``, vhost, Redis prefix
and ports), one sandbox registered with it and its operator (``--stats-file``). A
3-replica Deployment runs and is reported; then its image changes (one rolling update,
maxSurge/maxUnavailable 25 %). Measured, for that rollout only:

* **operator → MAE**: the bytes of the report bodies the operator POSTed (its stats
  file: before the change, and once it has been quiet for 2 s after the rollout ended);
* **remote watcher** (baseline, same run, same rollout): the official client watching
  Deployments, ReplicaSets and Pods of that namespace from the current resourceVersion —
  what MAE would receive if it watched the cluster itself across the public link.

Both count HTTP body bytes only (no headers, no TLS); the POST count is printed, as each
POST also carries ~250 bytes of headers. Heartbeats are set to 60 s so none falls into
the measurement. Target (issue 4): operator ≤ 0.1 × watcher.
"""
from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import fresh_backends  # noqa: E402
from bench.rpc_floor import free_port  # noqa: E402
from scripts.stack import Stack, admin_token  # noqa: E402

DB = "mae_bench_traffic"
VHOST = "mae-bench-traffic"
NS = "traffic"
LABELS = {"app.kubernetes.io/managed-by": "mae", "mae.io/app": NS}


def deployment(image):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": NS, "labels": LABELS, "annotations": {"mae.io/record-id": "1"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {**LABELS, "app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": image,
                                                           "ports": [{"containerPort": 80}]}]}}}}


class RemoteWatch(threading.Thread):
    """One watch stream (official client, raw), counting the bytes received."""

    def __init__(self, list_fn):
        super().__init__(daemon=True)
        self.list_fn, self.bytes, self.events, self.resp = list_fn, 0, 0, None
        rv = list_fn(NS).metadata.resource_version
        self.resp = list_fn(NS, watch=True, resource_version=rv, timeout_seconds=300, _preload_content=False)

    def run(self):
        try:
            for chunk in self.resp.stream(4096, decode_content=True):
                self.bytes += len(chunk)
                self.events += chunk.count(b"\n")
        except Exception:  # the stream ended with the stack: the measurement is over
            pass

    def stop(self):
        # Snapshot, not close: closing a urllib3 response another thread is reading blocks
        # until the server ends the stream; the daemon thread dies with the process.
        self.final = (self.bytes, self.events)


def stats(path: Path) -> dict:
    return json.loads(path.read_text())


def rolled_out(apps) -> bool:
    d = apps.read_namespaced_deployment("web", NS)
    s = d.status
    return (s.observed_generation == d.metadata.generation and s.updated_replicas == 3 and s.replicas == 3
            and s.ready_replicas == 3 and s.available_replicas == 3)


def wait(check, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise TimeoutError(what)


def quiet(path: Path, seconds: float = 2.0) -> dict:
    """The operator's stats once they have not changed for ``seconds``."""
    last, since = stats(path), time.monotonic()
    while time.monotonic() - since < seconds:
        time.sleep(0.2)
        now = stats(path)
        if now != last:
            last, since = now, time.monotonic()
    return last


def main() -> int:
    from kubernetes import client, config

    from shared.secretbox import generate_key

    db_url, amqp_uri = fresh_backends(DB, VHOST)
    run_dir = Path(tempfile.mkdtemp(prefix="mae-bench-traffic-"))
    stats_file = run_dir / "operator-stats.json"
    stack = Stack(run_dir=run_dir, config=ROOT / "config" / "test.yaml",
                  gateway_port=free_port(), localauth_port=free_port(), port_offset=3200,
                  env={"DB_URL": db_url, "AMQP_URI": amqp_uri,
                       "REDIS_URL": "redis://127.0.0.1:6379/2", "REDIS_PREFIX": "mae-bench-traffic",
                       "MAE_SECRET_KEY": generate_key(), "LOG_LEVEL": "WARNING"})
    try:
        stack.start_all()
        stack.wait_ready(90)
        token, _ = admin_token(stack, rotate=True)
        [info] = stack.start_clusters(
            token, clusters=[("traffic", "test", 0)], sandbox_opts={"no_persist": True, "ready_delay": 0.3},
            operator_opts={"batch_seconds": 0.5, "heartbeat_seconds": 60, "stats_file": stats_file}).values()
        cfg = client.Configuration()
        config.load_kube_config(config_file=info["kubeconfig"], client_configuration=cfg)
        api = client.ApiClient(cfg)
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": LABELS}})
        apps.create_namespaced_deployment(NS, deployment("nginx:1.25"))
        wait(lambda: rolled_out(apps), 60, "first rollout")
        wait(lambda: stats_file.exists(), 30, "the operator's first delivery")
        before = quiet(stats_file)

        watches = [RemoteWatch(apps.list_namespaced_deployment), RemoteWatch(apps.list_namespaced_replica_set),
                   RemoteWatch(core.list_namespaced_pod)]
        for w in watches:
            w.start()
        started = time.monotonic()
        apps.patch_namespaced_deployment("web", NS, {"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:1.26"}]}}}})
        time.sleep(0.5)
        wait(lambda: rolled_out(apps), 60, "the rolling update")
        took = time.monotonic() - started
        after = quiet(stats_file)
        time.sleep(0.3)  # the watchers have the last events too
        for w in watches:
            w.stop()
        latest = requests_latest(stack, token)
    finally:
        stack.stop_all()
    sent = after["bytes_sent"] - before["bytes_sent"]
    posts = after["posts"] - before["posts"]
    received = sum(w.final[0] for w in watches)
    events = sum(w.final[1] for w in watches)
    op_in = after["watch_bytes_received"] - before["watch_bytes_received"]
    print(f"report_traffic: one rolling update of a 3-replica Deployment ({took:.1f} s), body bytes")
    print(f"  remote watcher, Deployments+ReplicaSets+Pods (baseline)  {received:8d} B  ({events} watch events)")
    print(f"  operator → MAE reports                                   {sent:8d} B  ({posts} POSTs)")
    print(f"  (the operator's own watch, inside the cluster, received  {op_in:8d} B)")
    print(f"  ratio: {sent / received:.3f}x   target: <= 0.1x   MAE's latest report: {latest}")
    print("  result:", "meets the target" if sent <= 0.1 * received else "BELOW TARGET")
    return 0


def requests_latest(stack, token) -> str:
    """What MAE ended up with, so the bytes measured are known to have carried the rollout."""
    from nameko.standalone.rpc import ClusterRpcProxy

    from shared.config import load_config

    config = load_config(stack.config)
    config["AMQP_URI"] = stack.env["AMQP_URI"]
    with ClusterRpcProxy(config, timeout=15) as rpc:
        [r] = rpc.cluster.latest_reports("traffic", NS)
    rep = r["replicas"]
    return (f"generation {r['generation']}/{r['observed_generation']}, updated {rep['updated']}, "
            f"ready {rep['ready']}, available {rep['available']}")


if __name__ == "__main__":
    sys.exit(main())
