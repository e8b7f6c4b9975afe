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
from datetime import datetime, timezone

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


def _when(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc).timestamp()


def burst(api_url: str, admin: str, apps: list[str], clusters: list[str], timeout: float = 300) -> dict:
    """A version ``burst`` of each app's ``web`` (made first, one by one), then one deploy of each to
    ``clusters``, all sent at once; per deploy the seconds from its POST until the record's
    ``finished_at`` (the deploy service's clock, on this machine), and the final statuses."""
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {admin}"
    for app in apps:
        resp = s.post(f"{api_url}/apps/{app}/services/web/versions", timeout=60,
                      json={"name": "burst", "image": "registry.example/sc/web:2.0", "port": 8080, "replicas": 1})
        assert resp.status_code == 201, resp.text
    gate = threading.Barrier(len(apps))
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
    for t in threads:
        t.join()
    accepted = {a: v for a, v in sent.items() if v[1] is not None}
    final: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while len(final) < len(accepted) and time.monotonic() < deadline:
        time.sleep(0.5)
        for app, (_, record_id, _) in accepted.items():
            if app not in final:
                record = s.get(f"{api_url}/records/{record_id}", timeout=60).json()
                if record.get("finished_at"):
                    final[app] = record
    latencies = sorted(_when(final[a]["finished_at"]) - accepted[a][0] for a in final)
    statuses: dict[str, int] = {}
    for record in final.values():
        statuses[record["status"]] = statuses.get(record["status"], 0) + 1
    return {"sent": len(apps), "accepted": len(accepted), "final": len(final), "statuses": statuses,
            "latencies": latencies, "answered": answered, "refused": [v[2] for v in sent.values() if v[2]][:3]}
