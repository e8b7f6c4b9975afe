"""A wave of deploys through faults, and what must hold afterwards: the driver and the
phases every fault wave shares (tests/faults/test_wave.py on one broker, cluster_wave.py
on a 3-node RabbitMQ cluster and a Redis failed over by its sentinels).

A driver thread deploys — each deploy a new image of one of a few applications, to
test, prod or both; some images cannot be pulled — while the test injects its faults
(tests/faults/faults.py) between deploys, each after its share of them. Afterwards,
with no help: every record is final and matches what the cluster runs (read with
kubectl, which shares nothing with MAE), every target's log tells its whole walk
exactly once, every succeeded/failed record was notified exactly once to its Feishu or
DingTalk channel (local stand-ins that check signatures), and ``/readyz`` is green.
"""
from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.feishu import FakeFeishu
from tests.faults.checks import (all_records, compare_records_with_clusters, count_notices, on, read_every_log,
                                 stuck_lines, unreachable, wait_for)
from tests.faults.report import SUMMARY
from tests.kube import kubectl

DEPLOYS = 50
APPS = 6
CONVERGE_SECONDS = 240


class Driver(threading.Thread):
    """Deploys one after another; every one is a new image of an application's v1."""

    def __init__(self, api, apps, deploys=DEPLOYS, seed=9):
        super().__init__(name="deploy-wave", daemon=True)
        self.api, self.apps = api, apps
        self.rng = random.Random(seed)
        self.accepted: list[dict] = []
        self.error: BaseException | None = None
        self.done = threading.Event()
        # How many deploys may be accepted so far: the test raises it fault by fault, so
        # every fault lands mid-wave, with deploys still coming during and after it.
        self.deploys = self.allowed = deploys
        self._accepted = threading.Condition()

    def next_accept(self, timeout):
        with self._accepted:
            self._accepted.wait(timeout)

    def run(self):
        try:
            for i in range(self.deploys):
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



def create_apps(api, clusters, count=APPS) -> list[str]:
    """``count`` new apps with a service ``web`` and its version ``v1``, their namespaces on every cluster."""
    run = uuid.uuid4().hex[:4]
    apps = []
    for i in range(count):
        app = f"w{run}-{i}"
        api.call("POST", "/apps", (201,), json={"name": app})
        api.call("POST", f"/apps/{app}/services", (201,), json={"name": "web"})
        api.call("POST", f"/apps/{app}/services/web/versions", (201,),
                 json={"name": "v1", "image": "nginx:1.0", "port": 80, "replicas": 1})
        apps.append(app)
    for app in apps:
        for info in clusters.values():
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
    title: str = "fault wave"
    deploys: int = DEPLOYS
    started: float = field(default_factory=time.monotonic)
    feishu_secret: str = field(default_factory=lambda: "fs-" + uuid.uuid4().hex)
    ding_secret: str = field(default_factory=lambda: "SEC" + uuid.uuid4().hex)
    feishu: FakeFeishu | None = None
    dingtalk: FakeDingTalk | None = None
    channel_of: dict = field(default_factory=dict)      # app → the fake its channel posts to
    driver: Driver | None = field(default=None, init=False)
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

    def __post_init__(self):
        self.driver = Driver(self.api, self.apps, self.deploys)


def subscribe_channels(wave: Wave) -> None:
    """Every app notifies its deploys to Feishu or DingTalk (every other app each)."""
    for i, app in enumerate(wave.apps):
        fake, secret, kind = (wave.feishu, wave.feishu_secret, "feishu") if i % 2 == 0 else \
            (wave.dingtalk, wave.ding_secret, "dingtalk")
        wave.api.call("POST", f"/apps/{app}/channels", (201,), json={
            "name": f"{kind}-wave", "type": kind, "url": fake.url, "secret": secret,
            "events": ["deploy.succeeded", "deploy.failed"]})
        wave.channel_of[app] = fake


def deploy_through(wave: Wave, faults: list) -> None:
    """The driver deploys ``wave.deploys`` times; each fault lands mid-wave, after its share."""
    driver, deploys = wave.driver, wave.deploys
    # MAE_FAULTS=rabbit,mariadb: only the faults whose names hold one of these (to chase one
    # failure again and again); CI runs them all.
    only = [w.strip().lower() for w in os.environ.get("MAE_FAULTS", "").split(",") if w.strip()]
    if only:
        faults = [(name, f) for name, f in faults if any(w in name.lower() for w in only)]
    spacing = deploys // (len(faults) + 1)
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
        driver.allowed = deploys if n == len(faults) else (n + 1) * spacing + 2
    driver.join(600)
    assert driver.error is None, f"the wave stopped: {driver.error!r}"
    assert len(driver.accepted) == deploys
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
    summary = [f"{wave.title}:"] + [f"  fault {name}: {secs} s (deploys accepted: {a} before, {b} after)"
                                 for name, secs, a, b in wave.injected] \
        + [f"  {k}: {v}" for k, v in counts.items()] + [f"  lines lost: {wave.lost + len(wave.notices_lost)}"]
    if wave.late:
        summary.append(f"  late lines: {wave.late_where}")
    SUMMARY.extend(summary)


def assert_nothing_lost_doubled_or_wrong(wave: Wave) -> None:
    assert not wave.mismatches, f"records that do not match their cluster: {wave.mismatches}"
    assert len(wave.records) == len(wave.driver.accepted) == wave.deploys, "a retried deploy made a second record"
    assert (wave.lost, wave.duplicated) == (0, 0), f"log problems: {wave.log_details[:20]}; {wave.late_where}"
    assert not wave.notices_lost, f"no notice for records {wave.notices_lost}"
    assert not wave.notices_doubled, f"notified more than once: {wave.notices_doubled}"
    assert not wave.notices_foreign and not wave.wrong_channel, (wave.notices_foreign, wave.wrong_channel)
    assert wave.ready_status == 200, wave.ready_body
    assert not wave.api.unexpected, \
        f"outages answered with other than 503: {Counter(wave.api.unexpected).most_common(5)}"


def run_wave(wave: Wave, faults) -> None:
    """Deploy through ``faults(wave)`` (a list of ``(name, fault)``), then check everything."""
    with FakeFeishu(secret=wave.feishu_secret) as wave.feishu, FakeDingTalk(secret=wave.ding_secret) as wave.dingtalk:
        subscribe_channels(wave)
        deploy_through(wave, faults(wave))
        check_no_process_died(wave)
        wait_until_ready_and_consuming(wave)
        wait_until_every_record_is_final(wave)
        compare_records_with_clusters(wave)
        read_every_log(wave)
        count_notices(wave)
        wave.ready_status, wave.ready_body = wave.stack.readiness()
    report_counts(wave)
    assert_nothing_lost_doubled_or_wrong(wave)
