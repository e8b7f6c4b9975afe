"""Nodes, DaemonSets, StatefulSets, Jobs, CronJobs and ReplicationControllers driven by kubectl,
and what DELETE answers, as the official client parses it.

Tests of behaviour the real control plane's hollow node does not simulate (Job pods that run to
completion, ``:crash`` images exiting) are ``sandbox_only``.
"""
from __future__ import annotations

import asyncio
import json
import re
import threading

import pytest
import yaml
from kubernetes import client, watch

from sandbox_helpers import IMAGE_A, IMAGE_B, IMAGE_MISSING, wait_for


def get_json(kubectl, *args):
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def apply(kubectl, tmp_path, ns, *docs):
    path = tmp_path / "objs.yaml"
    for d in docs:
        d["metadata"]["namespace"] = ns
    path.write_text(yaml.safe_dump_all(docs))
    return kubectl("apply", "-f", str(path)).stdout


def workload(kind: str, name: str, image: str = IMAGE_A, **spec) -> dict:
    labels = {"app": name}
    body = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}}}
    body["spec"].update(spec)
    return body


def job(name: str, image: str, restart: str = "Never", **spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {**spec, "template": {"spec": {"restartPolicy": restart,
                                                   "containers": [{"name": "work", "image": image}]}}}}


def table(kubectl, *args) -> list[list[str]]:
    return [line.split() for line in kubectl("get", *args).stdout.splitlines()]


# ---------------------------------------------------------------------- nodes

def test_get_and_describe_nodes(kubectl, ns, tmp_path, core, cluster):
    version = json.loads(kubectl("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]
    rows = table(kubectl, "nodes")
    assert rows[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    names = [r[0] for r in rows[1:]]
    # The kubelet's version: the server's on the sandbox; a real cluster's kubelets may differ (the
    # control plane here is built from source, v0.0.0-master, its hollow node says v1.36.0).
    kubelet_version = version.split("+")[0] if cluster.is_sandbox else rows[1][4]
    assert names and all(r[1] == "Ready" and re.fullmatch(r"v\d+\.\d+\.\d+.*", r[4]) for r in rows[1:])
    assert all(r[4] == kubelet_version for r in rows[1:])

    node = get_json(kubectl, "node", names[0])
    st = node["status"]
    assert {"cpu", "memory", "pods"} <= set(st["capacity"]) and {"cpu", "memory", "pods"} <= set(st["allocatable"])
    assert [c["status"] for c in st["conditions"] if c["type"] == "Ready"] == ["True"]
    assert st["nodeInfo"]["kubeletVersion"] == kubelet_version
    internal_ip = [a["address"] for a in st["addresses"] if a["type"] == "InternalIP"][0]

    # A pod lands on one of these nodes, and describe lists it there.
    apply(kubectl, tmp_path, ns, workload("Deployment", "web", replicas=1))
    kubectl("-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")
    pod = core.list_namespaced_pod(ns, label_selector="app=web").items[0]
    assert pod.spec.node_name in names
    described = kubectl("describe", "node", pod.spec.node_name).stdout
    for needle in ("Capacity:", "Allocatable:", "System Info:", "Non-terminated Pods:", pod.metadata.name):
        assert needle in described, needle
    assert re.search(r"Kubelet Version:\s+" + re.escape(kubelet_version), described)
    assert re.search(r"Ready\s+True\s", described)
    if pod.spec.node_name == names[0]:
        assert re.search(r"InternalIP:\s+" + re.escape(internal_ip), described)


# ---------------------------------------------------------------------- DaemonSet

def test_daemonset_runs_one_pod_per_node_and_rolls_out_a_new_template(kubectl, ns, tmp_path, core):
    out = apply(kubectl, tmp_path, ns, workload("DaemonSet", "agent"))
    assert "daemonset.apps/agent created" in out
    res = kubectl("-n", ns, "rollout", "status", "ds/agent", "--timeout=60s").stdout
    assert 'daemon set "agent" successfully rolled out' in res
    nodes = [n for n in get_json(kubectl, "nodes")["items"] if not n["spec"].get("taints")]
    pods = core.list_namespaced_pod(ns, label_selector="app=agent").items
    assert sorted(p.spec.node_name for p in pods) == sorted(n["metadata"]["name"] for n in nodes)
    ds = get_json(kubectl, "-n", ns, "ds", "agent")
    st = ds["status"]
    assert st["desiredNumberScheduled"] == st["currentNumberScheduled"] == st["numberReady"] == len(nodes)
    assert st["updatedNumberScheduled"] == st["numberAvailable"] == len(nodes)
    assert all(p.metadata.owner_references[0].kind == "DaemonSet" for p in pods)
    old_hash = {p.metadata.labels["controller-revision-hash"] for p in pods}

    rows = table(kubectl, "-n", ns, "ds")
    assert rows[0] == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE", "SELECTOR", "AGE"]
    assert rows[1][:6] == ["agent"] + [str(len(nodes))] * 5

    kubectl("-n", ns, "set", "image", "ds/agent", f"app={IMAGE_B}")
    kubectl("-n", ns, "rollout", "status", "ds/agent", "--timeout=60s")
    pods = wait_for(lambda: [p for p in core.list_namespaced_pod(ns, label_selector="app=agent").items
                             if p.spec.containers[0].image == IMAGE_B] if len(
        core.list_namespaced_pod(ns, label_selector="app=agent").items) == len(nodes) else None, what="new pods")
    assert len(pods) == len(nodes)
    assert not old_hash & {p.metadata.labels["controller-revision-hash"] for p in pods}


# ---------------------------------------------------------------------- StatefulSet

def test_statefulset_ordinals_scale_down_from_the_top_and_rollout(kubectl, ns, tmp_path, core, cluster):
    out = apply(kubectl, tmp_path, ns, workload("StatefulSet", "db", replicas=3, serviceName="db"))
    assert "statefulset.apps/db created" in out
    res = kubectl("-n", ns, "rollout", "status", "sts/db", "--timeout=60s").stdout
    assert "roll out complete: 3 new pods have been updated" in res
    pods = {p.metadata.name: p for p in core.list_namespaced_pod(ns, label_selector="app=db").items}
    assert sorted(pods) == ["db-0", "db-1", "db-2"]
    for name, p in pods.items():
        assert p.metadata.labels["statefulset.kubernetes.io/pod-name"] == name
        assert p.metadata.labels["apps.kubernetes.io/pod-index"] == name[-1]
        assert p.spec.hostname == name and p.spec.subdomain == "db"
    st = get_json(kubectl, "-n", ns, "sts", "db")["status"]
    assert st["replicas"] == st["readyReplicas"] == st["updatedReplicas"] == 3
    assert st["currentRevision"] == st["updateRevision"] == pods["db-0"].metadata.labels["controller-revision-hash"]
    # Created in order, each after the one before it was Ready.
    created = [e for e in core.list_namespaced_event(ns).items if e.reason == "SuccessfulCreate"]
    assert [e.message for e in sorted(created, key=lambda e: e.metadata.name)] == [
        f"Create Pod db-{i} in StatefulSet db successful" for i in range(3)]
    assert table(kubectl, "-n", ns, "sts")[1][:2] == ["db", "3/3"]

    # Scale down: the highest ordinal goes first.
    rv = core.list_namespaced_pod(ns).metadata.resource_version
    deleted: list[str] = []

    def watch_deletes():
        for ev in watch.Watch().stream(core.list_namespaced_pod, ns, resource_version=rv, timeout_seconds=30):
            if ev["type"] == "DELETED":
                deleted.append(ev["object"].metadata.name)
                if len(deleted) == 2:
                    return

    t = threading.Thread(target=watch_deletes, daemon=True)
    t.start()
    assert "statefulset.apps/db scaled" in kubectl("-n", ns, "scale", "sts/db", "--replicas=1").stdout
    t.join(35)
    assert deleted == ["db-2", "db-1"]
    wait_for(lambda: get_json(kubectl, "-n", ns, "sts", "db")["status"].get("replicas") == 1, what="status 1")

    # A new template rolls out to every pod; currentRevision follows.
    kubectl("-n", ns, "scale", "sts/db", "--replicas=2")
    kubectl("-n", ns, "set", "image", "sts/db", f"app={IMAGE_B}")
    kubectl("-n", ns, "rollout", "status", "sts/db", "--timeout=60s")
    st = wait_for(lambda: (s := get_json(kubectl, "-n", ns, "sts", "db")["status"]).get("currentRevision") == s.get(
        "updateRevision") and s.get("readyReplicas") == 2 and s, what="revision rolled")
    assert st["currentRevision"] != pods["db-0"].metadata.labels["controller-revision-hash"]
    images = {p.metadata.name: p.spec.containers[0].image
              for p in core.list_namespaced_pod(ns, label_selector="app=db").items}
    assert images == {"db-0": IMAGE_B, "db-1": IMAGE_B}
    revisions = kubectl("-n", ns, "rollout", "history", "sts/db").stdout
    assert "1 " in revisions and "2 " in revisions


def test_ordered_statefulset_waits_for_each_pod_to_be_ready(kubectl, ns, tmp_path, core):
    apply(kubectl, tmp_path, ns, workload("StatefulSet", "slow", image=IMAGE_MISSING, replicas=3))
    wait_for(lambda: core.list_namespaced_pod(ns, label_selector="app=slow").items, what="slow-0")
    res = kubectl("-n", ns, "rollout", "status", "sts/slow", "--timeout=2s", check=False)
    assert res.returncode != 0 and "Waiting for 3 pods to be ready" in res.stdout
    assert [p.metadata.name for p in core.list_namespaced_pod(ns, label_selector="app=slow").items] == ["slow-0"]


# ---------------------------------------------------------------------- ReplicationController

def test_replication_controller_scales_and_owns_its_pods(kubectl, ns, tmp_path, core):
    rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "legacy"},
          "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "legacy"}},
                                               "spec": {"containers": [{"name": "app", "image": IMAGE_A}]}}}}
    assert "replicationcontroller/legacy created" in apply(kubectl, tmp_path, ns, rc)
    live = get_json(kubectl, "-n", ns, "rc", "legacy")
    assert live["spec"]["selector"] == {"app": "legacy"}
    wait_for(lambda: get_json(kubectl, "-n", ns, "rc", "legacy")["status"].get("readyReplicas") == 2, what="2 ready")
    kubectl("-n", ns, "scale", "rc/legacy", "--replicas=3")
    wait_for(lambda: table(kubectl, "-n", ns, "rc")[1][:4] == ["legacy", "3", "3", "3"], what="3 ready in the table")
    pods = core.list_namespaced_pod(ns, label_selector="app=legacy").items
    assert {(p.metadata.owner_references[0].kind, p.metadata.owner_references[0].name) for p in pods} == {
        ("ReplicationController", "legacy")}
    kubectl("-n", ns, "delete", "rc", "legacy")
    wait_for(lambda: not core.list_namespaced_pod(ns, label_selector="app=legacy").items, what="pods collected")


# ---------------------------------------------------------------------- Jobs and CronJobs

@pytest.mark.sandbox_only
def test_job_runs_its_pods_to_completion(kubectl, ns, tmp_path, core):
    assert "job.batch/work created" in apply(kubectl, tmp_path, ns, job("work", "busybox:1.36", completions=3,
                                                                       parallelism=2))
    out = kubectl("-n", ns, "wait", "--for=condition=complete", "job/work", "--timeout=60s").stdout
    assert "job.batch/work condition met" in out
    j = get_json(kubectl, "-n", ns, "job", "work")
    st = j["status"]
    assert st["succeeded"] == 3 and st["completionTime"] and st["startTime"] and not st.get("active")
    assert [(c["type"], c["reason"]) for c in st["conditions"]] == [
        ("SuccessCriteriaMet", "CompletionsReached"), ("Complete", "CompletionsReached")]
    uid = j["metadata"]["uid"]
    assert j["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    pods = core.list_namespaced_pod(ns, label_selector="job-name=work").items
    assert len(pods) == 3 and all(p.status.phase == "Succeeded" for p in pods)
    assert all(p.metadata.labels["controller-uid"] == uid and p.metadata.labels["batch.kubernetes.io/job-name"]
               == "work" and p.metadata.owner_references[0].uid == uid for p in pods)
    rows = table(kubectl, "-n", ns, "jobs")
    assert rows[0] == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert rows[1][:3] == ["work", "Complete", "3/3"]
    assert "Completed" in kubectl("-n", ns, "get", "pods", "-l", "job-name=work").stdout

    # ttlSecondsAfterFinished: the finished Job goes, and its pods with it.
    apply(kubectl, tmp_path, ns, job("brief", "busybox:1.36", ttlSecondsAfterFinished=0))
    wait_for(lambda: "brief" not in kubectl("-n", ns, "get", "jobs", "-o", "name").stdout, what="job ttl")
    wait_for(lambda: not core.list_namespaced_pod(ns, label_selector="job-name=brief").items, what="pods gone")


@pytest.mark.sandbox_only
def test_crashing_job_fails_after_its_backoff_limit(kubectl, ns, tmp_path, core):
    apply(kubectl, tmp_path, ns, job("boom", "busybox:crash", backoffLimit=1))
    out = kubectl("-n", ns, "wait", "--for=condition=failed", "job/boom", "--timeout=60s").stdout
    assert "condition met" in out
    st = get_json(kubectl, "-n", ns, "job", "boom")["status"]
    assert st["failed"] == 2 and not st.get("succeeded") and "completionTime" not in st
    assert [(c["type"], c["reason"]) for c in st["conditions"]] == [
        ("FailureTarget", "BackoffLimitExceeded"), ("Failed", "BackoffLimitExceeded")]
    pods = core.list_namespaced_pod(ns, label_selector="job-name=boom").items
    assert len(pods) == 2 and all(p.status.phase == "Failed" for p in pods)
    assert all(p.status.container_statuses[0].state.terminated.exit_code == 1 for p in pods)
    assert table(kubectl, "-n", ns, "jobs")[1][:3] == ["boom", "Failed", "0/1"]
    events = kubectl("-n", ns, "get", "events", "--field-selector", "involvedObject.name=boom").stdout
    assert "BackoffLimitExceeded" in events


@pytest.mark.sandbox_only
def test_create_job_from_cronjob(kubectl, ns, tmp_path):
    cj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
          "spec": {"schedule": "0 3 * * *", "successfulJobsHistoryLimit": 2,
                   "jobTemplate": {"metadata": {"labels": {"run": "nightly"}},
                                   "spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [
                                       {"name": "work", "image": "busybox:1.36"}]}}}}}}
    assert "cronjob.batch/nightly created" in apply(kubectl, tmp_path, ns, cj)
    rows = table(kubectl, "-n", ns, "cronjobs")
    assert rows[0] == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"]
    assert rows[1][:7] == ["nightly", "0", "3", "*", "*", "*", "<none>"]
    assert "job.batch/by-hand created" in kubectl("-n", ns, "create", "job", "by-hand", "--from=cronjob/nightly").stdout
    kubectl("-n", ns, "wait", "--for=condition=complete", "job/by-hand", "--timeout=60s")
    j = get_json(kubectl, "-n", ns, "job", "by-hand")
    assert j["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert j["metadata"]["ownerReferences"][0]["kind"] == "CronJob" and j["status"]["succeeded"] == 1
    # Deleting the CronJob takes its Jobs along.
    kubectl("-n", ns, "delete", "cronjob", "nightly")
    wait_for(lambda: "by-hand" not in kubectl("-n", ns, "get", "jobs", "-o", "name").stdout, what="job collected")


def test_cronjob_schedules_jobs_on_its_clock_and_trims_history():
    """The controller on an injected clock: a Job per due schedule, named after the scheduled
    minute, lastScheduleTime, Forbid, and the successful-history limit."""
    from sandbox.controllers import EventRecorder
    from sandbox.jobs import CronJobController
    from sandbox.registry import Registry, parse_time
    from sandbox.resources import CRONJOBS, JOBS, NAMESPACES
    from sandbox.registry import rfc3339 as registry_time
    from sandbox.store import Store

    async def scenario():
        registry = Registry(Store())
        registry.create(NAMESPACES, "", {"metadata": {"name": "default"}})
        now = [0.0]
        cron = CronJobController(registry, EventRecorder(registry, "n"), clock=lambda: now[0])
        cj = registry.create(CRONJOBS, "default", {"metadata": {"name": "tick"}, "spec": {
            "schedule": "* * * * *", "concurrencyPolicy": "Forbid", "successfulJobsHistoryLimit": 1,
            "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never",
                                                           "containers": [{"name": "c", "image": "x"}]}}}}}})
        created = parse_time(cj.obj["metadata"]["creationTimestamp"])
        names = []
        for minute in (1, 2, 3):
            now[0] = (created // 60 + minute) * 60 + 5  # 5 s past the next minute
            cron.sync(("default", "tick"))
            jobs = sorted(e.name for e in registry.store.iter(JOBS.key, "default"))
            status = registry.store.get(CRONJOBS.key, "default", "tick").obj["status"]
            assert status["lastScheduleTime"] == registry_time(now[0] - 5)
            assert [a["name"] for a in status["active"]] == [f"tick-{int(now[0] // 60)}"]
            cron.sync(("default", "tick"))  # still active: Forbid starts nothing more
            assert sorted(e.name for e in registry.store.iter(JOBS.key, "default")) == jobs
            names.append(jobs[-1])
            job = registry.store.get(JOBS.key, "default", jobs[-1])
            registry.write_status(JOBS, job.shallow(status={"succeeded": 1, "completionTime": registry_time(now[0]),
                                                            "startTime": registry_time(now[0] - 4),
                                                            "conditions": [{"type": "Complete", "status": "True"}]}),
                                  old=job)
        cron.sync(("default", "tick"))
        left = sorted(e.name for e in registry.store.iter(JOBS.key, "default"))
        status = registry.store.get(CRONJOBS.key, "default", "tick").obj["status"]
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()
        return names, left, status

    names, left, status = asyncio.run(scenario())
    assert len(set(names)) == 3 and all(n.startswith("tick-") for n in names)
    assert left == names[-1:]  # successfulJobsHistoryLimit: 1
    assert "active" not in status and status["lastSuccessfulTime"]


# ---------------------------------------------------------------------- DELETE answers

def test_delete_answers_like_the_api_server(kubectl, ns, core, apps):
    core.create_namespaced_service(ns, {"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}]}})
    gone = core.delete_namespaced_service("svc", ns)  # ReturnDeletedObject: the Service itself
    assert isinstance(gone, client.V1Service) and gone.metadata.name == "svc" and gone.spec.ports[0].port == 80

    cm = core.create_namespaced_config_map(ns, {"metadata": {"name": "cm"}, "data": {"a": "b"}})
    st = core.delete_namespaced_config_map("cm", ns)  # everything else: a Status naming it
    assert st["kind"] == "Status" and st["status"] == "Success"
    assert st["details"] == {"name": "cm", "kind": "configmaps", "uid": cm.metadata.uid}

    core.create_namespaced_config_map(ns, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    held = core.delete_namespaced_config_map("held", ns)  # deferred by a finalizer: the object
    assert held["metadata"]["name"] == "held" and held["metadata"]["deletionTimestamp"]
    core.patch_namespaced_config_map("held", ns, {"metadata": {"finalizers": None}})

    core.create_namespaced_service(ns, {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})
    assert 'service "web" deleted' in kubectl("-n", ns, "delete", "svc", "web").stdout


@pytest.mark.sandbox_only
def test_restart_keeps_the_node_and_job_pods_run_on_to_completion(tmp_path):
    from sandbox.testing import start_sandbox

    with start_sandbox("jobs", tmp_path / "c", ready_delay=1.5, backoff=0.3) as sb:
        api = sb.api_client()
        core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
        node = core.list_node().items[0]
        assert node.metadata.name == "jobs-node"
        batch.create_namespaced_job("default", job("long", "busybox:1.36"))
        wait_for(lambda: [p for p in core.list_namespaced_pod("default", label_selector="job-name=long").items
                          if p.status.container_statuses and p.status.container_statuses[0].ready],
                 what="the job's pod running")
        api.close()
        sb.restart()  # mid-run: the restored kubelet lets the container finish, once
        api = sb.api_client()
        core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
        j = wait_for(lambda: (j := batch.read_namespaced_job("long", "default")).status.succeeded and j,
                     what="job complete after the restart")
        assert [c.type for c in j.status.conditions] == ["SuccessCriteriaMet", "Complete"]
        pods = core.list_namespaced_pod("default", label_selector="job-name=long").items
        assert len(pods) == 1 and pods[0].status.phase == "Succeeded"
        term = pods[0].status.container_statuses[0]
        assert term.state.terminated.exit_code == 0 and term.restart_count == 0
        again = core.list_node().items
        assert [(n.metadata.name, n.metadata.uid) for n in again] == [("jobs-node", node.metadata.uid)]
        lease = client.CoordinationV1Api(api).read_namespaced_lease("jobs-node", "kube-node-lease")
        assert lease.spec.holder_identity == "jobs-node" and lease.spec.renew_time
        api.close()
