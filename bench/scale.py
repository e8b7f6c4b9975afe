"""MAE at the size of a real organisation: 10,000 apps, 200 users, 50,000 versions, 200,000
records and 5,000,000 log lines (issue 23).

Starts MAE as ``make up`` does (own database ``mae_bench_scale``, vhost, Redis prefix, ports).

1. **The API a person uses**, through the gateway, one request at a time, ``--requests`` of each
   call in interleaved rounds: ``GET /apps`` (first page and a later, cursor page) as the admin
   and as a member of 50 apps, and, as that member, what the console's app page asks for its
   app: the app, its clusters, services, a service's status per version and cluster, the
   newest 50 records, a record and its log. On a nearly empty database (the baseline: the
   member's 50 apps and their rows, ``scale_data.Sizes.baseline``) and on the full one (loaded
   straight into the tables, timed: ``scale_data.load``), in ``ROUNDS`` alternating rounds — the
   two sets of tables are swapped under the running services by one atomic RENAME
   (``scale_data.swap``), so a burst of other work on this shared machine falls on both sides.
   The app read (``sc-00000``) and its rows are the same in both. Target: p99 ≤ 2× the baseline.
2. **Namespace fan-out**: every app's namespace on a newly registered sandbox (``POST /clusters``
   until all namespaces and their quotas exist) against the official client making the same
   objects at MAE's concurrency on a fresh sandbox (``scale_clusters``). Target: ≤ 1.5×. A second
   cluster (prod) is registered the same way, for the burst.
3. **A burst** of ``--burst`` concurrent deploys, each to both sandboxes (test and prod, operators
   running): all final, p99 POST → record finished ≤ 3 s beyond the sandbox's pod-ready delay.
   Records are awaited with one SQL query every 0.25 s (not over the API, which would load the
   same cores). Also printed: the CPU seconds per deploy of each kind of MAE process (from
   /proc, first POST to last record final), the burst's CPU floor (their sum over the cores:
   no schedule finishes sooner) and the SQL statements per deploy (the server's ``Questions``).

``--quick`` is a tenth of the size (and a burst of 50), for ``make bench``; ``make bench-scale``
runs the full size.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import scale_clusters as clusters  # noqa: E402
from bench import scale_data as data  # noqa: E402
from bench.common import bench_stack  # noqa: E402
from scripts.stack import admin_token  # noqa: E402
from shared.paging import encode_cursor  # noqa: E402

DB = "mae_bench_scale"
ALT = "mae_bench_scale_alt"   # the other set of generated tables, swapped in and out (scale_data.swap)
ROUNDS, WARM = 4, 10
VHOST = "mae-bench-scale"
READY_DELAY = 0.2
SANDBOX_OPTS = {"no_persist": True, "ready_delay": READY_DELAY, "backoff": 0.3}
OPERATOR_OPTS = {"batch_seconds": 0.05, "heartbeat_seconds": 5, "backoff_cap": 1}


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def member_token(stack, user_id: int) -> str:
    from nameko.standalone.rpc import ClusterRpcProxy

    from shared.config import load_config

    config = {**load_config(stack.config), "AMQP_URI": stack.env["AMQP_URI"]}
    with ClusterRpcProxy(config, timeout=30) as rpc:
        return rpc.auth.create_token(user_id, "scale bench")["token"]


def flush_cache(prefix: str) -> None:
    """Generated rows bypass the services: forget what the gateway cached about the old ones."""
    import redis

    r = redis.Redis.from_url("redis://127.0.0.1:6379/2")
    for key in r.scan_iter(match=f"{prefix}:*", count=1000):
        r.delete(key)


def calls(api: str, admin: dict, member: dict, sizes: data.Sizes) -> list[tuple[str, str, dict]]:
    """(label, url, headers) of each call measured; ids looked up in this phase's data."""
    app = data.FOCUS
    first = requests.get(f"{api}/apps", params={"limit": 25}, headers=member, timeout=30).json()
    newest = requests.get(f"{api}/apps/{app}/records", params={"limit": 1}, headers=member, timeout=30).json()
    record = newest["items"][0]["id"]
    return [
        ("GET /apps  admin, first page", f"{api}/apps", admin),
        ("GET /apps  admin, a middle page", f"{api}/apps?limit=25&cursor={encode_cursor(sizes.apps // 2)}", admin),
        ("GET /apps  member of 50, first page", f"{api}/apps", member),
        ("GET /apps  member of 50, page 2", f"{api}/apps?limit=25&cursor={first['next_cursor']}", member),
        ("GET /apps/{app}", f"{api}/apps/{app}", member),
        ("GET /clusters", f"{api}/clusters", member),
        ("GET /apps/{app}/services", f"{api}/apps/{app}/services", member),
        ("GET /apps/{app}/services/web", f"{api}/apps/{app}/services/web", member),
        ("GET /apps/{app}/records?limit=50", f"{api}/apps/{app}/records?limit=50", member),
        ("GET /records/{id}", f"{api}/records/{record}", member),
        ("GET /records/{id}/logs", f"{api}/records/{record}/logs", member),
    ]


def measure(plan, rounds: int, times: dict[str, list[float]]) -> None:
    """``rounds`` rounds of one request of each call, after a warm-up; seconds into ``times``."""
    session = requests.Session()
    for n in range(rounds + WARM):
        for label, url, headers in plan:
            started = time.perf_counter()
            resp = session.get(url, headers=headers, timeout=60)
            elapsed = time.perf_counter() - started
            if resp.status_code != 200:
                raise RuntimeError(f"{label}: {resp.status_code} {resp.text[:300]}")
            if n >= WARM:
                times.setdefault(label, []).append(elapsed)


def api_phases(stack, api: str, admin: dict, member: dict, sizes: data.Sizes, requests_per_call: int):
    """Both databases, measured in alternating rounds (the machine is shared: a burst of other
    work then falls on both sides): ({label: seconds} empty, the same full)."""
    db_url = stack.env["DB_URL"]
    empty: dict[str, list[float]] = {}
    full: dict[str, list[float]] = {}
    plans = {}
    for _ in range(ROUNDS):
        for phase, size, times in (("empty", data.Sizes.baseline(), empty), ("full", sizes, full)):
            if phase == "full":
                data.swap(db_url, ALT)
            flush_cache(VHOST)
            plan = plans.get(phase) or plans.setdefault(phase, calls(api, admin, member, size))
            measure(plan, max(1, requests_per_call // ROUNDS), times)
            if phase == "full":
                data.swap(db_url, ALT)
    return empty, full


def api_report(empty: dict, full: dict) -> bool:
    print(f"  {'call (p50 / p99 ms)':40} {'empty db':>17} {'full db':>17}  p99 ratio (target <= 2.0)")
    ok = True
    for label in empty:
        a, b = empty[label], full[label]
        ratio = pct(b, 0.99) / pct(a, 0.99)
        ok &= ratio <= 2.0
        print(f"  {label:40} {statistics.median(a) * 1000:7.1f} / {pct(a, 0.99) * 1000:6.1f}"
              f"  {statistics.median(b) * 1000:7.1f} / {pct(b, 0.99) * 1000:6.1f}"
              f"  {ratio:5.2f}  {'PASS' if ratio <= 2.0 else 'FAIL'}")
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench/scale.py", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the size, a burst of 50")
    parser.add_argument("--fraction", type=float, help="size as a fraction of the full one (default 1)")
    parser.add_argument("--requests", type=int, default=int(os.environ.get("BENCH_REQUESTS", 300)))
    parser.add_argument("--burst", type=int, help="concurrent deploys (default 200; 50 with --quick)")
    args = parser.parse_args(argv)
    fraction = args.fraction or (0.1 if args.quick else 1.0)
    burst_size = args.burst or (50 if args.quick else 200)
    sizes = data.Sizes.full(fraction)
    stack = bench_stack(DB, VHOST, 4200, "mae-bench-scale-")
    db_url = stack.env["DB_URL"]
    from shared.config import load_config
    config = load_config(stack.config)
    print(f"scale: {sizes.describe()}; {os.cpu_count()} cores, {args.requests} requests per call and phase")
    try:
        user_ids = data.ensure_users(db_url, sizes.users)
        # The fan-out baseline first, on its own sandbox, before MAE's processes compete for the cores.
        apps = [f"sc-{i:05d}" for i in range(sizes.apps)]
        direct = clusters.raw_fanout(stack.start_sandbox("direct", 0, **SANDBOX_OPTS), config, apps)
        stack.stop("sandbox-direct")
        stack.start_all()
        stack.wait_ready(120)
        token, _ = admin_token(stack, rotate=True)
        admin = {"Authorization": f"Bearer {token}"}
        member = {"Authorization": f"Bearer {member_token(stack, user_ids[0])}"}
        api = stack.url + "/api/v1"

        data.load(db_url, data.Sizes.baseline(), user_ids)
        data.shadow(db_url, ALT)
        steps = data.load(db_url, sizes, user_ids, database=ALT)
        print(f" load: {steps['total']:.1f} s ({', '.join(f'{k} {v:.1f} s' for k, v in steps.items() if k != 'total')})")
        empty, full = api_phases(stack, api, admin, member, sizes, args.requests)
        data.swap(db_url, ALT)  # the full size stays, for the clusters
        flush_cache(VHOST)
        print(f"  rows: {data.counts(db_url)}")
        print(f" the API a person uses, through the gateway, one request at a time, {ROUNDS} alternating rounds "
              f"({data.FOCUS}'s member; baseline: {data.Sizes.baseline().describe()})")
        api_ok = api_report(empty, full)

        test = clusters.mae_fanout(stack, token, "test", "test", stack.start_sandbox("test", 0, **SANDBOX_OPTS),
                                   sizes.apps)
        prod = clusters.mae_fanout(stack, token, "prod", "prod", stack.start_sandbox("prod", 0, **SANDBOX_OPTS),
                                   sizes.apps)
        print(f" namespace fan-out of {sizes.apps:,} apps (Namespace + LimitRange + ResourceQuota each, "
              f"concurrency {clusters.FANOUT_CONCURRENCY})")
        print(f"  official client on a fresh sandbox (baseline)       {direct:7.1f} s  {sizes.apps / direct:6.0f} apps/s")
        fan_ok = True
        for name, got in (("test", test), ("prod", prod)):
            ratio = got["seconds"] / direct
            fan_ok &= ratio <= 1.5 and got["quotas"] >= sizes.apps
            print(f"  MAE: POST /clusters ({name}) → all in place          {got['seconds']:7.1f} s  "
                  f"{got['quotas'] / got['seconds']:6.0f} apps/s  ratio {ratio:.2f} (target <= 1.5) "
                  f"{'PASS' if ratio <= 1.5 and got['quotas'] >= sizes.apps else 'FAIL'}"
                  f"   (POST answered in {got['answered']:.2f} s; MAE's rows all done at "
                  f"{got['rows_at'] or float('nan'):.1f} s; {got['namespaces']}/{got['quotas']} present)")

        for name in ("test", "prod"):
            stack.start_operator(name, **OPERATOR_OPTS)
        session = requests.Session()
        session.headers.update(admin)
        reporting = clusters.wait_reporting(session, api, ["test", "prod"])
        got = clusters.burst(api, token, apps[1:burst_size + 1], ["test", "prod"], db_url, stack.pids())
    finally:
        stack.stop_all()
        data.drop(db_url, ALT)
    lat = got["latencies"]
    print(f" burst: {got['sent']} concurrent deploys, each to test and prod (operators reporting: {reporting}); "
          f"pod ready delay {READY_DELAY} s subtracted")
    burst_ok = got["final"] == got["sent"] and got["statuses"].get("succeeded") == got["sent"]
    if lat:
        p99 = pct(lat, 0.99) - READY_DELAY
        burst_ok &= p99 <= 3.0
        print(f"  POST deploy → succeeded   p50 {statistics.median(lat) - READY_DELAY:6.2f} s   p99 {p99:6.2f} s   "
              f"max {max(lat) - READY_DELAY:6.2f} s   (target p99 <= 3 s)")
    print(f"  POST deploy answered      p50 {statistics.median(got['answered']):6.2f} s   "
          f"p99 {pct(got['answered'], 0.99):6.2f} s")
    if got["final"]:
        total = sum(got["cpu"].values())
        print(f"  CPU per deploy (both clusters): {1000 * total / got['final']:.0f} ms — "
              + ", ".join(f"{kind} {1000 * sec / got['final']:.0f}" for kind, sec in
                          sorted(got["cpu"].items(), key=lambda kv: -kv[1]))
              + f"; the burst's CPU floor on {os.cpu_count()} cores: {total / (os.cpu_count() or 1):.1f} s; "
              f"{got['statements'] / got['final']:.0f} SQL statements per deploy")
    print(f"  accepted {got['accepted']}, final {got['final']}: {got['statuses']}"
          + (f"; refused e.g. {got['refused']}" if got["refused"] else ""))
    print(f"  result: API {'PASS' if api_ok else 'FAIL'}, fan-out {'PASS' if fan_ok else 'FAIL'}, "
          f"burst {'PASS' if burst_ok else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
