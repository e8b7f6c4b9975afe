"""What a fault wave checks once it is over (tests/faults/wave.py runs them): records
against what kubectl reads from each cluster, every record's log, every notice."""
from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter
from typing import TYPE_CHECKING

from tests.kube import kubectl_json
from tests.waiting import waiter

if TYPE_CHECKING:
    from tests.faults.wave import Wave

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

UNREACHABLE = "The cluster could not be reached"


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

