"""Operator status reports through the gateway intake into deploy record state.

Starts MAE as ``make up`` does with one replica of each service and one sandbox
cluster registered (no operator: the bench plays it, with the cluster's report
token). ``TARGETS`` versions are deployed to it (real applies); then, for each
Deployment, ``STEPS`` reports (rising resourceVersions, the last one all ready)
plus duplicates and a stale crash report are POSTed in shuffled batches of 20,
from 8 threads. Measured: reports/s from the first POST until every record is
final (checked by listing the app's records every 0.1 s), and that every record
ended exactly ``succeeded`` with the last report's replica counts (each record
read on its own after the clock stopped). Baseline in the same run: the same
number of reports for Deployments no record is waiting for (intake and bus, no
record state).
Target (issue 5): ≥ 2,000 reports/s.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import fresh_backends  # noqa: E402
from bench.deploy_latency import start  # noqa: E402
from scripts.stack import admin_token  # noqa: E402
from shared.timeutil import rfc3339, utcnow  # noqa: E402

TARGETS = int(os.environ.get("BENCH_TARGETS", 100))
STEPS = int(os.environ.get("BENCH_STEPS", 40))
BATCH, THREADS = 20, 8
DB = "mae_bench_status"
VHOST = "mae-bench-status"


def report(app, name, uid, generation, record_id, rv, ready, pods=()):
    return {"namespace": app, "kind": "Deployment", "name": name, "uid": uid, "generation": generation,
            "observed_generation": generation, "resource_version": str(rv), "deleted": False, "labels": {},
            "annotations": {"mae.io/record-id": str(record_id)},
            "replicas": {"desired": 2, "updated": 2, "ready": ready, "available": ready, "unavailable": 2 - ready},
            "conditions": [], "progress_deadline_seconds": 600, "pods": list(pods), "events": [],
            "observed_at": rfc3339(utcnow())}


def send_all(url, token, reports):
    batches = [reports[i:i + BATCH] for i in range(0, len(reports), BATCH)]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    retries = []

    def post(batch):
        # As the operator does: retry until 202 (the intake may refuse under contention).
        for attempt in range(20):
            resp = session.post(url, json={"reports": batch}, timeout=60)
            if resp.status_code == 202:
                return
            retries.append(resp.status_code)
            time.sleep(0.05 * (attempt + 1))
        resp.raise_for_status()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(post, batches))
    return len(retries)


def all_records(session, api, app) -> list[dict]:
    """Every record of ``app`` (GET /apps/{app}/records, all pages)."""
    out, cursor = [], None
    while True:
        page = session.get(f"{api}/apps/{app}/records", params={"limit": 200, **({"cursor": cursor} if cursor else {})})
        page.raise_for_status()
        body = page.json()
        out += body["items"]
        cursor = body.get("next_cursor")
        if not cursor:
            return out


def cpu_by_process() -> dict[str, float]:
    """CPU seconds (user + system) so far of each process this bench started (diagnostics)."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) != os.getpid():
                continue
            with open(f"/proc/{pid}/cmdline") as f:
                argv = f.read().split("\0")
        except OSError:
            continue
        name = next((a.split(":")[-1] for a in argv if ":" in a and "." in a.split(":")[0]), None) \
            or " ".join(argv[1:3])
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def main() -> int:

    db_url, amqp_uri = fresh_backends(DB, VHOST)
    stack = start(db_url, amqp_uri)
    rng = random.Random(5)
    try:
        token, _ = admin_token(stack, rotate=True)
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {token}"
        api = stack.url + "/api/v1"
        info = stack.start_sandbox("test", 0, ready_delay=0.2)
        report_token = stack.register_cluster(token, "test", "test", info)
        app = "bench"
        s.post(f"{api}/apps", json={"name": app}).raise_for_status()
        s.post(f"{api}/apps/{app}/services", json={"name": "web"}).raise_for_status()
        time.sleep(3)  # the namespace reaches the cluster
        records = {}
        for i in range(TARGETS):
            s.post(f"{api}/apps/{app}/services/web/versions",
                   json={"name": f"v{i}", "image": "nginx:1", "port": 80, "replicas": 2}).raise_for_status()
            records[f"web-v{i}"] = s.post(f"{api}/apps/{app}/services/web/versions/v{i}/deploy",
                                          json={"env": "test"}).json()["record_id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # every apply answered
            statuses = [s.get(f"{api}/records/{rid}").json()["status"] for rid in records.values()]
            if all(x == "applied" for x in statuses):
                break
            time.sleep(0.5)
        url = f"{stack.url}/api/v1/clusters/test/reports"
        base = 10**12
        # Baseline: reports for Deployments nobody waits for.
        idle = [report(app, f"idle-{t}", f"idle-uid-{t}", 1, 0, base + t * 1000 + k, min(k, 2))
                for t in range(TARGETS) for k in range(STEPS)]
        rng.shuffle(idle)
        started = time.perf_counter()
        idle_retries = send_all(url, report_token, idle)
        baseline = len(idle) / (time.perf_counter() - started)
        # The real thing: rising reports per Deployment, duplicated, shuffled, with a stale crash.
        real, stale = [], []
        for name, record_id in records.items():
            for k in range(STEPS):
                ready = 2 if k == STEPS - 1 else rng.randint(0, 1)
                real.append(report(app, name, "uid-ignored", 1, record_id, base + 10**9 + k, ready))
            real.append(real[-1])  # a duplicate of the last one
            # Older than everything above; sent last, so it is stale when it arrives.
            stale.append(report(app, name, "uid-ignored", 1, record_id, base + 10**9 - 1, 0,
                                pods=[{"name": "p", "waiting_reason": "CrashLoopBackOff", "restart_count": 5}]))
        # uid: the one the apply produced (a report for another incarnation would be ignored)
        uids = {}
        for name, record_id in records.items():
            out = subprocess.run(["kubectl", "--kubeconfig", info["kubeconfig"], "-n", app, "get", "deployment", name,
                                  "-o", "jsonpath={.metadata.uid} {.metadata.generation}"],
                                 capture_output=True, text=True, check=True)
            uid, generation = out.stdout.split()
            uids[name] = (uid, int(generation))
        for r in real + stale:
            r["uid"], r["generation"] = uids[r["name"]]
            r["observed_generation"] = r["generation"]
        # Order within one Deployment is what an operator would send (rising), interleaved across
        # Deployments; the duplicate and the stale report land anywhere.
        rng.shuffle(real)
        cpu_before = cpu_by_process()
        started = time.perf_counter()
        real_retries = send_all(url, report_token, real) + send_all(url, report_token, stale)
        real += stale
        deadline = time.monotonic() + 300
        wanted = set(records.values())
        while time.monotonic() < deadline:
            # One listing per check (paged), not one GET per record: 100 GETs in a row took
            # about a second, which the measurement then counted as ingest time.
            finished = {r["id"] for r in all_records(s, api, app) if r["id"] in wanted and r["finished_at"]}
            if finished == wanted:
                break
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
        cpu_after = cpu_by_process()
        # The verdict reads every record on its own, once the clock has stopped.
        final = {n: s.get(f"{api}/records/{rid}").json() for n, rid in records.items()}
    finally:
        stack.stop_all()
    rate = len(real) / elapsed
    exact = all(r["status"] == "succeeded" and r["targets"][0]["replicas"] == {"desired": 2, "updated": 2,
                                                                              "ready": 2, "available": 2}
                for r in final.values())
    print(f"status_ingest: {TARGETS} deployments x {STEPS} reports (+ duplicates, stale), batches of {BATCH}, "
          f"{THREADS} senders, one replica of each service, {os.cpu_count()} cores")
    print(f"  intake only, no waiting record (baseline) {baseline:8.0f} reports/s")
    print(f"  intake → record state, until all final    {rate:8.0f} reports/s   (target >= 2000)")
    if not exact:
        from collections import Counter
        print("  final:", Counter((r["status"], r["targets"][0]["status"], str(r["targets"][0]["replicas"]))
                                   for r in final.values()).most_common(5))
    print(f"  intake refusals retried (not 202): baseline {idle_retries}, real {real_retries}")
    print(f"  final states exact (all succeeded with 2/2 ready, no stale crash taken): {exact}")
    cpu = {k: cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after}
    print(f"  CPU during intake → final ({elapsed:.2f} s, {len(real)} reports): "
          + ", ".join(f"{k} {v:.2f} s" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]) if v >= 0.01))
    print("  result:", "meets the targets" if rate >= 2000 and exact else "BELOW TARGET")
    return 0


if __name__ == "__main__":
    sys.exit(main())
