"""A wave of 50 deploys across two sandbox clusters while everything MAE stands on breaks.

The stack runs 2 replicas of every service on the suite's own RabbitMQ, Redis and
MariaDB (conftest.py). A driver thread deploys — each deploy a new image of one of
a few applications, to test, prod or both; some images cannot be pulled — while
the test, between deploys, in turn:

* kills (SIGKILL) a replica of deploy, cluster, gateway and notify, and starts it
  again as a supervisor would;
* restarts RabbitMQ, makes MariaDB unavailable for 30 s, restarts Redis;
* restarts both operators and the ``test`` sandbox (its API server).

Afterwards, with no help: every record is final and matches what the cluster runs
(read with kubectl, which shares nothing with MAE), every target's log tells its
whole walk exactly once, every succeeded/failed record was notified exactly once
to its Feishu or DingTalk channel (local stand-ins that check signatures), and
``/readyz`` is green.
"""
from __future__ import annotations

import os
import random
import re
import signal
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import pytest

from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.feishu import FakeFeishu
from tests.faults.report import SUMMARY
from tests.kube import kubectl, kubectl_json
from tests.waiting import waiter

DEPLOYS = 50
APPS = 6
CONVERGE_SECONDS = 240


def on(info) -> dict:
    """kubectl's options (tests/kube.py) for one sandbox cluster of the wave."""
    return {"kubeconfig": info["kubeconfig"], "request_timeout": "20s", "timeout": 40}


def live_deployment(info, app, name):
    return kubectl_json("-n", app, "get", "deployment", name, **on(info))


def pods_of(info, app):
    return kubectl_json("-n", app, "get", "pods", check=True, **on(info))["items"]


def pod_ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


wait_for = waiter(timeout=60.0, interval=1.0)

# -- the faults ----------------------------------------------------------------------------

def kill_replica(stack, name, driver=None):
    def fault():
        if driver is not None:
            # Right after a deploy was accepted: its apply requests, apply results, status
            # reports and notices are in flight, so the kill most likely lands mid-work.
            driver.allowed = max(driver.allowed, len(driver.accepted) + 1)
            driver.next_accept(timeout=20)
            time.sleep(random.uniform(0.0, 0.15))
        stack.stop(f"{name}-0", signal.SIGKILL)
        time.sleep(1.0)  # the supervisor's restart delay
        stack.start(name, 0)
    return f"kill -9 {name}-0", fault


def restart_rabbitmq(servers):
    return "restart RabbitMQ", servers["rabbit"].restart


def mariadb_outage(servers, seconds=30):
    def fault():
        servers["mariadb"].stop()
        time.sleep(seconds)
        servers["mariadb"].start()
    return f"MariaDB unavailable {seconds} s", fault


def restart_redis(servers, seconds=5):
    def fault():
        servers["redis"].stop()  # SHUTDOWN NOSAVE: every lock, cache and limit is gone
        time.sleep(seconds)
        servers["redis"].start()
    return f"restart Redis (down {seconds} s, keys lost)", fault


def restart_operators(stack):
    from tests.faults.infra import OPERATOR_OPTS

    def fault():
        for name in ("test", "prod"):
            stack.stop(f"operator-{name}", signal.SIGKILL)
        time.sleep(1.0)
        for name in ("test", "prod"):
            stack.start_operator(name, **OPERATOR_OPTS)
    return "restart both operators", fault


UNREACHABLE = "The cluster could not be reached"


def restart_sandbox(stack, clusters, name="test", seconds=3):
    from tests.faults.infra import SANDBOX_OPTS

    def fault():
        # The API server restarts; the cluster's state (etcd's, here the snapshot) survives.
        # An apply that comes meanwhile may fail, visibly ("could not be reached"), by design.
        stack.stop(f"sandbox-{name}", signal.SIGTERM)
        time.sleep(seconds)
        stack.start_sandbox(name, clusters[name]["port"], **SANDBOX_OPTS)
    return f"restart sandbox {name} (down {seconds} s)", fault


def unreachable(target) -> bool:
    """Failed, visibly, because its cluster's API server was down (only the restarted one)."""
    return (target["status"] == "failed" and target["cluster"] == "test"
            and (target["reason"] or "").startswith(UNREACHABLE))


def stuck_lines(stack, servers) -> str:
    """Where undelivered lines may wait: the log queue's ready/unacked counts per consumer, and
    every deploy replica's green threads (written to its log by ``kill -USR1``, shared/debug.py)."""
    state = servers["rabbit"].queue_state()
    for key, pid in stack.pids().items():
        if key.startswith("deploy-"):
            try:
                os.kill(pid, signal.SIGUSR1)
            except OSError:
                pass
    return f"{state}\ndeploy green threads dumped to the logs under {stack.run_dir}"


# -- the wave ------------------------------------------------------------------------------

class Driver(threading.Thread):
    """Deploys one after another; every one is a new image of an application's v1."""

    def __init__(self, api, apps, seed=9):
        super().__init__(name="deploy-wave", daemon=True)
        self.api, self.apps = api, apps
        self.rng = random.Random(seed)
        self.accepted: list[dict] = []
        self.error: BaseException | None = None
        self.done = threading.Event()
        # How many deploys may be accepted so far: the test raises it fault by fault, so
        # every fault lands mid-wave, with deploys still coming during and after it.
        self.allowed = DEPLOYS
        self._accepted = threading.Condition()

    def next_accept(self, timeout):
        with self._accepted:
            self._accepted.wait(timeout)

    def run(self):
        try:
            for i in range(DEPLOYS):
                while len(self.accepted) >= self.allowed:
                    time.sleep(0.1)
                app = self.apps[i % len(self.apps)]
                image = "nginx:missing" if i % 7 == 3 else f"nginx:1.{i}"
                clusters = self.rng.choice([["test"], ["prod"], ["test", "prod"]])
                self.api.call("PATCH", f"/apps/{app}/services/web/versions/v1", (200,),
                              json={"image": image})
                # A retry after a lost answer (503, a cut connection) carries the same key, so it
                # gets the first record back instead of making a second one.
                resp = self.api.call("POST", f"/apps/{app}/services/web/versions/v1/deploy", (202,),
                                     json={"clusters": clusters}, headers={"Idempotency-Key": f"wave-{i}"})
                self.accepted.append({"record_id": resp.json()["record_id"], "app": app, "image": image,
                                      "clusters": clusters})
                with self._accepted:
                    self._accepted.notify_all()
                time.sleep(0.5)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.done.set()


def all_records(api, app):
    items, cursor = [], None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        body = api.call("GET", f"/apps/{app}/records", (200,), params=params).json()
        items += body["items"]
        cursor = body.get("next_cursor")
        if not cursor:
            return items


def record_log(api, record_id):
    lines, after = [], 0
    while True:
        body = api.call("GET", f"/records/{record_id}/logs", (200,), params={"after": after, "limit": 200}).json()
        if not body["items"]:
            return lines
        lines += body["items"]
        after = body["next_after"]


TRANSITION = re.compile(r"^(pending|applying|applied|progressing) → (\w+)")


def log_problems(record, lines):
    """(lost, duplicated, details): the walk each target's log must tell, exactly once."""
    lost = duplicated = 0
    details = []
    intro = [l for l in lines if l["cluster"] == "" and "requested by" in l["line"]]
    ends = [l for l in lines if l["cluster"] == "" and l["line"].startswith("record ")]
    for what, found, want in (("intro", intro, 1), ("record end", ends, 1)):
        if len(found) < want:
            lost += want - len(found)
            details.append(f"record {record['id']}: {what} line missing")
        elif len(found) > want:
            duplicated += len(found) - want
            details.append(f"record {record['id']}: {what} line {len(found)} times")
    if ends and ends[0]["line"] != f"record {record['status']}":
        details.append(f"record {record['id']}: log says {ends[0]['line']!r}, record is {record['status']}")
        lost += 1
    for target in record["targets"]:
        steps = [TRANSITION.match(l["line"]).groups() for l in lines
                 if l["cluster"] == target["cluster"] and TRANSITION.match(l["line"])]
        counts = Counter(steps)
        duplicated += sum(n - 1 for n in counts.values() if n > 1)
        if any(n > 1 for n in counts.values()):
            details.append(f"record {record['id']} {target['cluster']}: repeated {counts.most_common(1)}")
        # The walk from pending to the target's final status, link by link.
        walk, at, seen = [], "pending", set(counts)
        while at != target["status"]:
            step = next((s for s in seen if s[0] == at), None)
            if step is None:
                break
            walk.append(step)
            seen.discard(step)
            at = step[1]
        if at != target["status"]:
            lost += 1
            details.append(f"record {record['id']} {target['cluster']}: log walk {steps} does not reach "
                           f"{target['status']}")
        # What the cluster said when it took the Deployment (a cluster.log line).
        if ("applying", "applied") in counts and not any(
                l["cluster"] == target["cluster"] and f"Deployment {record['app']}/web-v1" in l["line"]
                for l in lines):
            lost += 1
            details.append(f"record {record['id']} {target['cluster']}: no line from the cluster about the apply")
    return lost, duplicated, details


@pytest.fixture(scope="module")
def wave_apps(fault_admin, fault_clusters):
    run = uuid.uuid4().hex[:4]
    apps = []
    for i in range(APPS):
        app = f"w{run}-{i}"
        fault_admin.call("POST", "/apps", (201,), json={"name": app})
        fault_admin.call("POST", f"/apps/{app}/services", (201,), json={"name": "web"})
        fault_admin.call("POST", f"/apps/{app}/services/web/versions", (201,),
                         json={"name": "v1", "image": "nginx:1.0", "port": 80, "replicas": 1})
        apps.append(app)
    for app in apps:
        for info in fault_clusters.values():
            wait_for(lambda: kubectl("get", "namespace", app, **on(info)).returncode == 0, 60, what=f"namespace {app}")
    return apps


# -- the test, phase by phase ----------------------------------------------------------------

@dataclass
class Wave:
    """What the phases of the test hand on to each other."""

    stack: object
    api: object
    servers: dict
    clusters: dict
    apps: list
    started: float = field(default_factory=time.monotonic)
    feishu_secret: str = field(default_factory=lambda: "fs-" + uuid.uuid4().hex)
    ding_secret: str = field(default_factory=lambda: "SEC" + uuid.uuid4().hex)
    feishu: FakeFeishu | None = None
    dingtalk: FakeDingTalk | None = None
    channel_of: dict = field(default_factory=dict)      # app → the fake its channel posts to
    driver: Driver | None = None
    injected: list = field(default_factory=list)        # (fault, seconds, accepted before, after)
    wave_seconds: float = 0.0
    records: list = field(default_factory=list)
    mismatches: list = field(default_factory=list)
    lost: int = 0
    duplicated: int = 0
    log_details: list = field(default_factory=list)
    late: int = 0
    late_where: str = ""
    told: dict = field(default_factory=dict)            # record id → record, for records notified
    notices_lost: list = field(default_factory=list)
    notices_doubled: list = field(default_factory=list)
    notices_foreign: list = field(default_factory=list)
    wrong_channel: list = field(default_factory=list)
    ready_status: int = 0
    ready_body: object = None


def subscribe_channels(wave: Wave) -> None:
    """Every app notifies its deploys to Feishu or DingTalk (every other app each)."""
    for i, app in enumerate(wave.apps):
        fake, secret, kind = (wave.feishu, wave.feishu_secret, "feishu") if i % 2 == 0 else \
            (wave.dingtalk, wave.ding_secret, "dingtalk")
        wave.api.call("POST", f"/apps/{app}/channels", (201,), json={
            "name": f"{kind}-wave", "type": kind, "url": fake.url, "secret": secret,
            "events": ["deploy.succeeded", "deploy.failed"]})
        wave.channel_of[app] = fake


def deploy_through_every_fault(wave: Wave) -> None:
    """The driver deploys DEPLOYS times; each fault lands mid-wave, after its share."""
    stack, servers = wave.stack, wave.servers
    driver = wave.driver = Driver(wave.api, wave.apps)
    faults = [kill_replica(stack, "deploy", driver), kill_replica(stack, "cluster", driver),
              kill_replica(stack, "gateway", driver), kill_replica(stack, "notify", driver),
              restart_rabbitmq(servers), mariadb_outage(servers), restart_redis(servers),
              restart_operators(stack), restart_sandbox(stack, wave.clusters)]
    # MAE_FAULTS=rabbit,mariadb: only the faults whose names hold one of these (to chase one
    # failure again and again); CI runs them all.
    only = [w.strip().lower() for w in os.environ.get("MAE_FAULTS", "").split(",") if w.strip()]
    if only:
        faults = [(name, f) for name, f in faults if any(w in name.lower() for w in only)]
    spacing = DEPLOYS // (len(faults) + 1)
    driver.allowed = spacing + 2
    driver.start()
    for n, (name, fault) in enumerate(faults, start=1):
        # Mid-wave: each fault lands after its share of the deploys was accepted, and a
        # few more may come while it lasts.
        wait_for(lambda: len(driver.accepted) >= n * spacing or driver.done.is_set(), 300,
                 what=f"{n * spacing} deploys before '{name}'", interval=0.2)
        assert not driver.done.is_set(), f"the wave ended before fault '{name}': {driver.error!r}"
        t0, before = time.monotonic(), len(driver.accepted)
        fault()
        wave.injected.append((name, round(time.monotonic() - t0, 1), before, len(driver.accepted)))
        driver.allowed = DEPLOYS if n == len(faults) else (n + 1) * spacing + 2
    driver.join(600)
    assert driver.error is None, f"the wave stopped: {driver.error!r}"
    assert len(driver.accepted) == DEPLOYS
    wave.wave_seconds = time.monotonic() - wave.started


def check_no_process_died(wave: Wave) -> None:
    """Only those the test killed died, and they were restarted."""
    from scripts.stack import _alive
    dead = sorted(key for key, pid in wave.stack.pids().items() if not _alive(pid))
    assert not dead, f"processes that died during the wave: {dead}; faults: {wave.injected}"


def wait_until_ready_and_consuming(wave: Wave) -> None:
    """/readyz comes back by itself, and every replica consumes again."""
    stack, servers = wave.stack, wave.servers
    stack.wait_ready(120)

    def every_replica_consumes():
        queues = {q: n for q, n in servers["rabbit"].consumers().items()
                  if q.startswith(("rpc-", "evt-", "deploy-"))}
        short = {q: n for q, n in queues.items() if n < stack.replicas}
        return (queues if queues and not short else None) or (False, short)
    try:
        wait_for(lambda: (lambda r: r if isinstance(r, dict) else None)(every_replica_consumes()), 120,
                 what="every service queue to have a consumer per replica", interval=2)
    except AssertionError:
        raise AssertionError(f"queues short of consumers: {every_replica_consumes()}; faults: {wave.injected}")


def wait_until_every_record_is_final(wave: Wave) -> None:
    api, apps = wave.api, wave.apps

    def all_final():
        records = [r for app in apps for r in all_records(api, app)]
        open_ = [r["id"] for r in records if not r["finished_at"]
                 or any(t["status"] not in ("succeeded", "failed", "superseded") for t in r["targets"])]
        return records if not open_ else None
    try:
        wave.records = wait_for(all_final, CONVERGE_SECONDS, what="every record to finish", interval=2)
    except AssertionError:
        stuck = [(r["id"], r["status"], [(t["cluster"], t["status"], t["attempt"]) for t in r["targets"]])
                 for app in apps for r in all_records(api, app) if not r["finished_at"]]
        raise AssertionError(f"records stuck: {stuck}; faults: {wave.injected}; "
                             f"{stuck_lines(wave.stack, wave.servers)}")
    by_id = {r["id"]: r for r in wave.records}
    assert {d["record_id"] for d in wave.driver.accepted} <= set(by_id)


def compare_records_with_clusters(wave: Wave) -> None:
    """What each cluster runs is what the newest record there says (``wave.mismatches``)."""
    records, mismatches = wave.records, wave.mismatches
    for app in wave.apps:
        for cluster, info in wave.clusters.items():
            mine = [r for r in records if r["app"] == app and any(t["cluster"] == cluster for t in r["targets"])]
            if not mine:
                continue
            newest = max(mine, key=lambda r: r["id"])
            target = next(t for t in newest["targets"] if t["cluster"] == cluster)
            live = live_deployment(info, app, "web-v1")
            image = live and live["spec"]["template"]["spec"]["containers"][0]["image"]
            record_on_cluster = live and live["metadata"].get("annotations", {}).get("mae.io/record-id")
            # The pods that run this record's image: all ready, or none ready and failing to pull
            # (the previous ReplicaSet's pod keeps serving meanwhile, as Kubernetes does).
            pods = [p for p in pods_of(info, app)
                    if p["spec"]["containers"][0]["image"] == target["image"]]
            ready = sum(pod_ready(p) for p in pods)
            want = "failed" if target["image"] == "nginx:missing" else "succeeded"
            ok = (target["status"] == want and image == target["image"]
                  and record_on_cluster == str(newest["id"])
                  and (ready == live["spec"]["replicas"] if want == "succeeded"
                       else pods and ready == 0))
            if unreachable(target):
                # Refused while the API server was down: then none of it may run there.
                ok = record_on_cluster != str(newest["id"])
            if not ok:
                mismatches.append({"app": app, "cluster": cluster, "record": newest["id"],
                                   "target": (target["status"], target["reason"], target["image"]),
                                   "live": (image, record_on_cluster, len(pods), ready)})
    # Older records: a good image either succeeded or was superseded, a missing one failed or was.
    for r in records:
        for t in r["targets"]:
            allowed = {"failed", "superseded"} if t["image"] == "nginx:missing" else {"succeeded", "superseded"}
            if t["status"] not in allowed and not unreachable(t):
                mismatches.append({"record": r["id"], "cluster": t["cluster"], "image": t["image"],
                                   "status": t["status"], "reason": t["reason"]})


def read_every_log(wave: Wave) -> None:
    """Every log tells every walk exactly once (``wave.lost``, ``wave.duplicated``, ``wave.late``)."""

    def read_logs():
        lost = duplicated = 0
        details = []
        for r in wave.records:
            a, b, found = log_problems(r, record_log(wave.api, r["id"]))
            lost, duplicated, details = lost + a, duplicated + b, details + found
        return lost, duplicated, details
    lost, duplicated, log_details = read_logs()
    # Lines still on their way when every record is final are late, not lost: they are
    # counted (and where they wait is written down at once), then read again for up to 20 s.
    late = lost
    late_where = f"first read: {log_details[:10]}; {stuck_lines(wave.stack, wave.servers)}" if lost else ""
    deadline = time.monotonic() + 20
    while lost and time.monotonic() < deadline:
        time.sleep(3)
        lost, duplicated, log_details = read_logs()
    wave.lost, wave.duplicated, wave.log_details = lost, duplicated, log_details
    wave.late, wave.late_where = late, late_where


def count_notices(wave: Wave) -> None:
    """Every finished deploy notified exactly once, to its app's channel."""
    told = wave.told = {r["id"]: r for r in wave.records if r["status"] in ("succeeded", "failed")}

    def notices():
        got = Counter()
        for fake in (wave.feishu, wave.dingtalk):
            for request in fake.accepted_requests:
                for record_id in re.findall(r"#/records/(\d+)", request.body.decode()):
                    got[int(record_id)] += 1
        return got
    try:
        wait_for(lambda: set(notices()) >= set(told), 150, what="a notice for every finished record", interval=2)
    except AssertionError:
        pass  # counted below as lost
    time.sleep(3)  # a duplicate, if any, has time to arrive
    got = notices()
    wave.notices_lost = sorted(set(told) - set(got))
    wave.notices_doubled = sorted(i for i, n in got.items() if n > 1)
    wave.notices_foreign = sorted(set(got) - set(told))
    for record_id in got:
        if record_id in told:
            fake = wave.channel_of[told[record_id]["app"]]
            if not any(f"#/records/{record_id}" in q.body.decode() for q in fake.accepted_requests):
                wave.wrong_channel.append(record_id)


def report_counts(wave: Wave) -> None:
    """What the wave did and what converged, in pytest's terminal summary (-s or not)."""
    records, driver = wave.records, wave.driver
    counts = {
        "deploys": len(driver.accepted), "records": len(records),
        "duplicate records": len(records) - len({d["record_id"] for d in driver.accepted}),
        "faults injected": len(wave.injected), "records converged": len(records),
        "records matching the cluster": len(records) - len(wave.mismatches),
        "log lines lost": wave.lost, "log lines duplicated": wave.duplicated,
        "log lines late (missing when every record was final, there within 20 s)": wave.late - wave.lost,
        "targets failed while their cluster's API server was down": sum(
            unreachable(t) for r in records for t in r["targets"]),
        "notifications expected": len(wave.told), "notifications lost": len(wave.notices_lost),
        "notifications duplicated": len(wave.notices_doubled),
        "answers other than 503 during outages": len(wave.api.unexpected),
        "statuses": dict(Counter(r["status"] for r in records)),
        "wave seconds": round(wave.wave_seconds, 1), "total seconds": round(time.monotonic() - wave.started, 1),
    }
    summary = ["fault wave:"] + [f"  fault {name}: {secs} s (deploys accepted: {a} before, {b} after)"
                                 for name, secs, a, b in wave.injected] \
        + [f"  {k}: {v}" for k, v in counts.items()] + [f"  lines lost: {wave.lost + len(wave.notices_lost)}"]
    if wave.late:
        summary.append(f"  late lines: {wave.late_where}")
    SUMMARY.extend(summary)


def assert_nothing_lost_doubled_or_wrong(wave: Wave) -> None:
    assert not wave.mismatches, f"records that do not match their cluster: {wave.mismatches}"
    assert len(wave.records) == len(wave.driver.accepted) == DEPLOYS, "a retried deploy made a second record"
    assert (wave.lost, wave.duplicated) == (0, 0), f"log problems: {wave.log_details[:20]}; {wave.late_where}"
    assert not wave.notices_lost, f"no notice for records {wave.notices_lost}"
    assert not wave.notices_doubled, f"notified more than once: {wave.notices_doubled}"
    assert not wave.notices_foreign and not wave.wrong_channel, (wave.notices_foreign, wave.wrong_channel)
    assert wave.ready_status == 200, wave.ready_body
    assert not wave.api.unexpected, \
        f"outages answered with other than 503: {Counter(wave.api.unexpected).most_common(5)}"


@pytest.mark.timeout(900)
def test_a_wave_of_deploys_survives_every_fault(fault_stack, fault_admin, fault_clusters, private_servers,
                                               wave_apps):
    wave = Wave(stack=fault_stack, api=fault_admin, servers=private_servers, clusters=fault_clusters,
                apps=wave_apps)
    with FakeFeishu(secret=wave.feishu_secret) as wave.feishu, FakeDingTalk(secret=wave.ding_secret) as wave.dingtalk:
        subscribe_channels(wave)
        deploy_through_every_fault(wave)
        check_no_process_died(wave)
        wait_until_ready_and_consuming(wave)
        wait_until_every_record_is_final(wave)
        compare_records_with_clusters(wave)
        read_every_log(wave)
        count_notices(wave)
        wave.ready_status, wave.ready_body = wave.stack.readiness()
    report_counts(wave)
    assert_nothing_lost_doubled_or_wrong(wave)
