"""The scale bench's cluster parts: namespace fan-out of every app to a newly registered
cluster (against the official client doing the same creates) and a burst of concurrent deploys.

Fan-out baseline: for each app, the three objects MAE makes in its namespace fan-out
(``services/cluster/domain/namespaces.enact``: the Namespace with MAE's labels, its LimitRange
and its ResourceQuota, the same bodies) created with the official kubernetes client on a fresh
sandbox, ``FANOUT_CONCURRENCY`` at a time (MAE's concurrency per cluster). MAE is timed from
``POST /clusters`` until the cluster holds every app's Namespace and ResourceQuota (the last
object of each), listed with the official client every ``POLL`` seconds.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timezone

import requests

from bench.fanout import api_client
from services.cluster.domain.fanout import FANOUT_CONCURRENCY

POLL = 1.0
MANAGED = "app.kubernetes.io/managed-by=mae"


def _bodies(config: dict, app_id: int, name: str):
    from services.cluster.domain import defences, namespaces

    want = defences.for_app(defences.Settings.from_config(config))
    meta = namespaces.mark(name, app_id, want.pod_security)
    return ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, **meta}},
            defences.limit_range_body(name, want.limits), defences.quota_body(name, want.quota))


def raw_fanout(info: dict, config: dict, apps: list[str]) -> float:
    """Seconds for the official client to create each app's Namespace, LimitRange and ResourceQuota."""
    core = api_client(info)

    def one(item):
        app_id, name = item
        ns, limits, quota = _bodies(config, app_id, name)
        core.create_namespace(ns)
        core.create_namespaced_limit_range(name, limits)
        core.create_namespaced_resource_quota(name, quota)

    started = time.perf_counter()
    with ThreadPoolExecutor(FANOUT_CONCURRENCY) as pool:
        list(pool.map(one, enumerate(apps, 1)))
    elapsed = time.perf_counter() - started
    assert count_done(core) == (len(apps), len(apps))
    return elapsed


def count_done(core) -> tuple[int, int]:
    """(MAE namespaces, MAE resource quotas) on the cluster."""
    spaces = len(core.list_namespace(label_selector=MANAGED).items)
    quotas = len(core.list_resource_quota_for_all_namespaces(label_selector=MANAGED).items)
    return spaces, quotas


def mae_fanout(stack, admin: str, name: str, env: str, info: dict, apps: int, timeout: float = 900) -> dict:
    """Register the sandbox with MAE; seconds until all ``apps`` namespaces and quotas exist.
    Listing 10,000 objects costs the client a second of CPU, which MAE needs: the cheap
    question goes first (MAE's rows for the cluster all done, polled every ``POLL`` / 2 s), then
    the cluster is listed (again every ``POLL`` s until everything is there)."""
    from bench.scale_data import _connect

    core = api_client(info)
    conn = _connect(stack.env["DB_URL"])
    started = time.perf_counter()
    stack.register_cluster(admin, name, env, info)
    answered = time.perf_counter() - started
    spaces = quotas = 0
    rows_at = None
    while time.perf_counter() - started < timeout:
        if rows_at is None:
            time.sleep(POLL / 2)
            with conn.cursor() as cur:
                cur.execute("SELECT COUNT(*) FROM cluster_namespaces WHERE cluster = %s AND state = 'ok'", (name,))
                if cur.fetchone()[0] < apps:
                    continue
            rows_at = time.perf_counter() - started
        spaces, quotas = count_done(core)
        if spaces >= apps and quotas >= apps:
            break
        time.sleep(POLL)
    conn.close()
    return {"seconds": time.perf_counter() - started, "rows_at": rows_at, "answered": answered,
            "namespaces": spaces, "quotas": quotas}


def wait_reporting(api: requests.Session, base: str, clusters: list[str], timeout: float = 120) -> bool:
    """Until each cluster's operator has reported and its namespaces are all in place."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        views = [api.get(f"{base}/clusters/{c}", timeout=30).json() for c in clusters]
        if all(v.get("last_report_at") and not (v.get("namespaces") or {}).get("pending") for v in views):
            return True
        time.sleep(1)
    return False


def _finished(engine, record_ids: list[int]) -> dict[int, tuple[str, float]]:
    """(status, finished_at as a UTC timestamp) of the finished ones of ``record_ids``: one query,
    so waiting for 200 records does not itself load the gateway (polling each record over the
    API every half second was 400 requests a second on the 2 cores the burst runs on)."""
    from sqlalchemy import bindparam, text

    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, status, finished_at FROM deploy_records "
                                 "WHERE id IN :ids AND finished_at IS NOT NULL")
                            .bindparams(bindparam("ids", expanding=True)), {"ids": record_ids}).all()
    return {row.id: (row.status, row.finished_at.replace(tzinfo=timezone.utc).timestamp()) for row in rows}


def _questions(engine) -> int:
    """The database server's statement counter (``Questions``: every statement a client sent)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        return int(conn.execute(text("SHOW GLOBAL STATUS LIKE 'Questions'")).one()[1])


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    from bench.footprint import sample

    return {key: got[1] for key, pid in pids.items() if (got := sample(pid)) is not None}


def burst(api_url: str, admin: str, apps: list[str], clusters: list[str], db_url: str,
          pids: dict[str, int] | None = None, timeout: float = 300) -> dict:
    """A version ``burst`` of each app's ``web`` (made first, one by one), then one deploy of each to
    ``clusters``, all sent at once; per deploy the seconds from its POST until the record's
    ``finished_at`` (the deploy service's clock, on this machine), the final statuses, and the CPU
    seconds each kind of process (``pids``: the stack's) spent and the SQL statements the database
    server received (all clients: the bench's own waiting included), from the first POST to the
    last record final."""
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {admin}"
    for app in apps:
        resp = s.post(f"{api_url}/apps/{app}/services/web/versions", timeout=60,
                      json={"name": "burst", "image": "registry.example/sc/web:2.0", "port": 8080, "replicas": 1})
        assert resp.status_code == 201, resp.text
    gate = threading.Barrier(len(apps) + 1)
    sent: dict[str, tuple[float, int | None, str]] = {}
    answered: list[float] = []

    def deploy(app):
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {admin}"
        gate.wait()
        t = time.time()
        try:
            resp = session.post(f"{api_url}/apps/{app}/services/web/versions/burst/deploy",
                                json={"clusters": clusters}, timeout=120)
        except requests.RequestException as exc:  # e.g. reset: more connections than the listen backlog
            sent[app] = (t, None, f"{type(exc).__name__}: {str(exc)[:120]}")
            return
        answered.append(time.time() - t)
        sent[app] = (t, resp.json().get("record_id") if resp.status_code == 202 else None,
                     "" if resp.status_code == 202 else f"{resp.status_code} {resp.text[:200]}")

    threads = [threading.Thread(target=deploy, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    from sqlalchemy import create_engine

    engine = create_engine(db_url, pool_size=1, pool_pre_ping=True)  # one connection for all the waiting
    cpu_before, questions_before = _cpu(pids or {}), _questions(engine)
    gate.wait()
    for t in threads:
        t.join()
    accepted = {a: v for a, v in sent.items() if v[1] is not None}
    by_record = {v[1]: a for a, v in accepted.items()}
    final: dict[str, tuple[str, float]] = {}
    deadline = time.monotonic() + timeout
    while len(final) < len(accepted) and time.monotonic() < deadline:
        time.sleep(0.25)
        for record_id, got in _finished(engine, list(by_record)).items():
            final[by_record[record_id]] = got
    cpu_after, questions = _cpu(pids or {}), _questions(engine) - questions_before
    engine.dispose()
    cpu: dict[str, float] = {}
    for key, seconds in cpu_after.items():
        kind = key.split("-")[0]  # gateway-0, deploy-1, sandbox-test, operator-prod → their kind
        cpu[kind] = cpu.get(kind, 0.0) + seconds - cpu_before.get(key, seconds)
    latencies = sorted(final[a][1] - accepted[a][0] for a in final)
    statuses: dict[str, int] = {}
    for status, _ in final.values():
        statuses[status] = statuses.get(status, 0) + 1
    return {"sent": len(apps), "accepted": len(accepted), "final": len(final), "statuses": statuses,
            "latencies": latencies, "answered": answered, "refused": [v[2] for v in sent.values() if v[2]][:3],
            "cpu": cpu, "statements": questions}
