"""Memory and CPU of every MAE process, idle and under a deploy + read workload.

The figures behind the resource requests in k8s/ (k8s/README.md, "Sizing"). Starts
MAE as ``make up`` does (own database, vhost, Redis prefix, ports) with one sandbox
cluster and its operator, samples each process's resident memory and CPU time from
/proc every 0.2 s, first idle for a few seconds, then while ``DEPLOYS`` deploys run
one after another and ``READERS`` threads read ``GET /apps`` and the records.
Printed per process: RSS idle and peak, CPU idle and under load (millicores), and
the requests derived from them (memory: peak + 25 % rounded up to 16 MiB; CPU: the
mean under load, at least 25m). Baseline in the same run: the Python interpreter
alone (``python -c`` sleeping), what any process costs before MAE's code loads.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import fresh_backends  # noqa: E402
from bench.deploy_latency import READY_DELAY, start  # noqa: E402
from scripts.stack import admin_token  # noqa: E402

DEPLOYS = int(os.environ.get("BENCH_DEPLOYS", 20))
READERS = int(os.environ.get("BENCH_READERS", 4))
IDLE_SECONDS = 5.0
DB = "mae_bench_footprint"
VHOST = "mae-bench-footprint"
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def sample(pid: int) -> tuple[int, float] | None:
    """(resident bytes, CPU seconds so far) of ``pid``, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            rss = int(f.read().split()[1]) * PAGE
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return rss, (int(fields[11]) + int(fields[12])) / TICK
    except (FileNotFoundError, ProcessLookupError):
        return None


class Sampler(threading.Thread):
    def __init__(self, pids: dict[str, int]):
        super().__init__(daemon=True)
        self.pids, self.phase, self.stop = pids, "idle", threading.Event()
        self.peak = {("idle", k): 0 for k in pids} | {("load", k): 0 for k in pids}
        self.cpu_at: dict[tuple[str, str], float] = {}
        self.marks: dict[str, float] = {}

    def mark(self, phase: str) -> None:
        now = time.monotonic()
        for key, pid in self.pids.items():
            got = sample(pid)
            if got:
                self.cpu_at[(phase, key)] = got[1]
        self.marks[phase] = now
        if phase in ("idle", "load"):
            self.phase = phase

    def run(self) -> None:
        while not self.stop.wait(0.2):
            for key, pid in self.pids.items():
                got = sample(pid)
                if got:
                    slot = (self.phase, key)
                    self.peak[slot] = max(self.peak[slot], got[0])

    def millicores(self, start: str, end: str, key: str) -> float:
        seconds = self.marks[end] - self.marks[start]
        used = self.cpu_at.get((end, key), 0.0) - self.cpu_at.get((start, key), 0.0)
        return 1000 * used / seconds if seconds > 0 else 0.0


def interpreter_rss() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"])
    try:
        time.sleep(1.0)
        return sample(proc.pid)[0]
    finally:
        proc.kill()
        proc.wait()


def workload(stack, token: str, stop: threading.Event) -> int:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    api = stack.url + "/api/v1"
    app = "footprint"
    s.post(f"{api}/apps", json={"name": app}).raise_for_status()
    s.post(f"{api}/apps/{app}/services", json={"name": "web"}).raise_for_status()
    for _ in range(150):  # the namespace reaches the cluster
        if s.get(f"{api}/clusters/test").json().get("namespaces", {}).get("ok"):
            break
        time.sleep(0.2)
    reads = [0]

    def reader():
        r = requests.Session()
        r.headers["Authorization"] = f"Bearer {token}"
        while not stop.is_set():
            r.get(f"{api}/apps").raise_for_status()
            r.get(f"{api}/apps/{app}/records").raise_for_status()
            reads[0] += 2

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(READERS)]
    for t in threads:
        t.start()
    succeeded = 0
    for i in range(DEPLOYS):
        s.post(f"{api}/apps/{app}/services/web/versions",
               json={"name": f"v{i}", "image": f"nginx:1.{i}", "port": 80, "replicas": 2}).raise_for_status()
        record_id = s.post(f"{api}/apps/{app}/services/web/versions/v{i}/deploy",
                           json={"env": "test"}).json()["record_id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            record = s.get(f"{api}/records/{record_id}").json()
            if record["finished_at"]:
                succeeded += record["status"] == "succeeded"
                break
            time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    return succeeded, reads[0]


def mib_up(n: float, step: int = 16) -> int:
    return int(math.ceil(n / (1 << 20) / step) * step)


def main() -> int:
    floor = interpreter_rss()
    db_url, amqp_uri = fresh_backends(DB, VHOST)
    stack = start(db_url, amqp_uri)
    try:
        token, _ = admin_token(stack, rotate=True)
        stack.start_clusters(token, clusters=[("test", "test", 0)],
                             sandbox_opts={"ready_delay": READY_DELAY, "backoff": 0.3},
                             operator_opts={"batch_seconds": 0.1, "heartbeat_seconds": 5, "backoff_cap": 1})
        pids = {k: v for k, v in stack.pids().items() if not k.startswith(("localauth", "sandbox"))}
        sampler = Sampler(pids)
        sampler.start()
        sampler.mark("idle")
        time.sleep(IDLE_SECONDS)
        sampler.mark("load")
        stop = threading.Event()
        succeeded, reads = workload(stack, token, stop)
        sampler.mark("end")
        sampler.stop.set()
        sampler.join()
    finally:
        stack.stop_all()
    load_seconds = sampler.marks["end"] - sampler.marks["load"]
    print(f"footprint: {DEPLOYS} deploys ({succeeded} succeeded) and {reads} reads from {READERS} threads "
          f"in {load_seconds:.1f} s, {os.cpu_count()} cores")
    print(f"  python interpreter alone (baseline)   RSS {floor / (1 << 20):6.1f} MiB")
    print(f"  {'process':<14} {'RSS idle':>9} {'RSS peak':>9} {'CPU idle':>9} {'CPU load':>9}   "
          f"{'request mem':>11} {'request cpu':>11}")
    for key in sorted(pids):
        idle, peak = sampler.peak[("idle", key)], max(sampler.peak[("idle", key)], sampler.peak[("load", key)])
        cpu_idle = sampler.millicores("idle", "load", key)
        cpu_load = sampler.millicores("load", "end", key)
        print(f"  {key:<14} {idle / (1 << 20):7.1f}Mi {peak / (1 << 20):7.1f}Mi {cpu_idle:7.0f}m {cpu_load:8.0f}m   "
              f"{mib_up(peak * 1.25):9d}Mi {max(25, int(round(cpu_load, -1))):10d}m")
    print(f"  peak RSS / interpreter alone: {max(sampler.peak.values()) / floor:.1f}x")
    return 0 if succeeded == DEPLOYS else 1


if __name__ == "__main__":
    sys.exit(main())
