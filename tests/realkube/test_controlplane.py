"""The real control plane and its hollow node: real Deployment/ReplicaSet controllers, scheduler,
Pod Security Admission and RBAC, with the kubelet played by ``hollow_node.py``."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from kubernetes import client

from tests.realkube.controlplane import KUBE_BIN_SCRIPT, ControlPlaneError, start_control_plane
from tests.waiting import poller, waiter

wait_for = waiter(timeout=30.0, interval=0.1)
wait_until = poller(timeout=30.0, interval=0.1)

NGINX = "nginx:1.27"


def deployment(name: str, image: str = NGINX, replicas: int = 2) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "web", "image": image}]}}}}


def pod(name: str, image: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": image}]}}


def condition(obj, ctype: str):
    for c in (obj.status.conditions or []):
        if c.type == ctype:
            return c
    return None


def kubelet_events(core, ns: str, name: str) -> list:
    evs = core.list_namespaced_event(ns, field_selector=f"involvedObject.name={name}").items
    return [e for e in evs if e.source and e.source.component == "kubelet"]


def test_kubectl_sees_the_hollow_node_ready(real_kube, kubectl, kube_api):
    out = kubectl("get", "nodes").stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("hollow-1"))
    assert line.split()[1] == "Ready", out
    node = client.CoreV1Api(kube_api).read_node("hollow-1")
    assert node.status.capacity["cpu"] == "8" and node.status.capacity["memory"] == "32Gi"
    assert node.status.capacity["pods"] == "110" and node.status.allocatable["pods"] == "110"
    assert node.status.node_info.operating_system == "linux"
    assert {a.type for a in node.status.addresses} == {"InternalIP", "Hostname"}
    lease = client.CoordinationV1Api(kube_api).read_namespaced_lease("hollow-1", "kube-node-lease")
    assert lease.spec.holder_identity == "hollow-1" and lease.spec.renew_time
    # Extra identities come from the token file: RBAC really applies to them.
    viewer = real_kube.api_client(real_kube.token_for("realkube-viewer", ["realkube-viewers"]))
    with pytest.raises(client.ApiException) as err:
        client.CoreV1Api(viewer).list_namespaced_secret("default")
    assert err.value.status == 403
    viewer.close()


def test_deployment_becomes_available_then_scales_down(core, apps, ns):
    apps.create_namespaced_deployment(ns, deployment("web"))

    def available():
        d = apps.read_namespaced_deployment("web", ns)
        c = condition(d, "Available")
        return d if c and c.status == "True" and d.status.ready_replicas == 2 else None

    dep = wait_for(available, what="Deployment web Available with 2/2 ready")
    assert dep.status.available_replicas == 2 and dep.status.updated_replicas == 2

    pods = core.list_namespaced_pod(ns, label_selector="app=web").items
    assert len(pods) == 2
    for p in pods:
        assert p.spec.node_name == "hollow-1"  # bound by the real scheduler
        assert p.status.phase == "Running" and p.status.pod_ip and p.status.host_ip == "10.0.0.10"
        cs = p.status.container_statuses[0]
        assert cs.ready and cs.started and cs.restart_count == 0
        assert cs.container_id.startswith("containerd://") and cs.image_id and cs.state.running.started_at
        assert {c.type: c.status for c in p.status.conditions} == {
            "PodReadyToStartContainers": "True", "Initialized": "True", "ContainersReady": "True",
            "Ready": "True", "PodScheduled": "True"}
    reasons = {e.reason for e in kubelet_events(core, ns, pods[0].metadata.name)}
    assert {"Pulling", "Pulled", "Created", "Started"} <= reasons
    sched = core.list_namespaced_event(
        ns, field_selector=f"involvedObject.name={pods[0].metadata.name},reason=Scheduled")
    assert sched.items and "default-scheduler" in (sched.items[0].reporting_component, sched.items[0].source.component)

    # Scale down: the ReplicaSet controller deletes a pod (grace period 30 s) and the hollow node
    # finalises it, so it really goes away and the Deployment settles at 1/1.
    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 1}})
    names = {p.metadata.name for p in pods}
    remaining = wait_until(lambda: core.list_namespaced_pod(ns, label_selector="app=web").items,
                           lambda items: len(items) == 1)
    gone = (names - {remaining[0].metadata.name}).pop()
    with pytest.raises(client.ApiException) as err:
        core.read_namespaced_pod(gone, ns)
    assert err.value.status == 404
    wait_until(lambda: apps.read_namespaced_deployment("web", ns).status,
               lambda s: s.replicas == 1 and s.ready_replicas == 1 and s.available_replicas == 1)


def test_missing_image_goes_to_image_pull_backoff(core, ns):
    core.create_namespaced_pod(ns, pod("nope", "nginx:missing"))

    def backoff():
        p = core.read_namespaced_pod("nope", ns)
        cs = (p.status.container_statuses or [None])[0]
        return p if cs and cs.state.waiting and cs.state.waiting.reason == "ImagePullBackOff" else None

    p = wait_for(backoff, what="ImagePullBackOff")
    assert p.status.phase == "Pending" and not p.status.container_statuses[0].ready
    assert condition(p, "Ready").status == "False"
    evs = kubelet_events(core, ns, "nope")
    messages = {(e.reason, e.message) for e in evs}
    assert ("Failed", "Error: ErrImagePull") in messages and ("Failed", "Error: ImagePullBackOff") in messages
    assert all(e.source.host == "hollow-1" for e in evs)


def test_crashing_image_goes_to_crash_loop_backoff(core, ns):
    core.create_namespaced_pod(ns, pod("boom", "nginx:crash"))

    def crash_loop(min_restarts: int):
        def check():
            p = core.read_namespaced_pod("boom", ns)
            cs = (p.status.container_statuses or [None])[0]
            ok = cs and cs.restart_count >= min_restarts and cs.state.waiting \
                and cs.state.waiting.reason == "CrashLoopBackOff"
            return p if ok else None
        return check

    first = wait_for(crash_loop(1), what="CrashLoopBackOff")
    later = wait_for(crash_loop(first.status.container_statuses[0].restart_count + 1),
                     what="restartCount growing")
    cs = later.status.container_statuses[0]
    assert later.status.phase == "Running" and not cs.ready
    assert cs.last_state.terminated.exit_code == 1
    assert condition(later, "Ready").status == "False"
    assert "BackOff" in {e.reason for e in kubelet_events(core, ns, "boom")}


def test_restricted_namespace_refuses_pods_with_replica_failure(core, apps):
    import uuid
    name = "rk-psa-" + uuid.uuid4().hex[:6]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=name, labels={"pod-security.kubernetes.io/enforce": "restricted"})))
    try:
        apps.create_namespaced_deployment(name, deployment("web", replicas=1))

        def failure():
            c = condition(apps.read_namespaced_deployment("web", name), "ReplicaFailure")
            return c if c and c.status == "True" else None

        c = wait_for(failure, what="ReplicaFailure condition")
        assert c.reason == "FailedCreate" and "violates PodSecurity" in c.message, c
        assert core.list_namespaced_pod(name).items == []
    finally:
        core.delete_namespace(name)


def test_a_second_control_plane_is_refused_while_etcd_runs(core, tmp_path):
    """etcd always listens on localhost:2379: one control plane per machine, refused with a clear message."""
    with pytest.raises(ControlPlaneError, match="port 2379 is already in use"):
        start_control_plane(tmp_path / "second")
    assert core.read_node("hollow-1").metadata.name == "hollow-1"  # the first one is untouched


def test_kube_bin_script_fails_clearly_without_binaries(tmp_path):
    """KUBE_BIN empty and no archive beside the (copied) repo: exit 1 naming KUBE_BIN, no long
    network wait (the envtest download points at a closed local port)."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    script = root / "scripts" / "kube-bin.sh"
    shutil.copy2(KUBE_BIN_SCRIPT, script)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("KUBE_BIN", "KUBE_BIN_ARCHIVE")}
    env["ENVTEST_BASE_URL"] = "http://127.0.0.1:9"  # refused at once

    with_empty = subprocess.run([str(script)], env=dict(env, KUBE_BIN=str(empty)), capture_output=True,
                                text=True, timeout=30)
    assert with_empty.returncode == 1 and with_empty.stdout == ""
    assert "KUBE_BIN" in with_empty.stderr and "kube-apiserver" in with_empty.stderr
    assert len(with_empty.stderr.strip().splitlines()) == 1

    nothing = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert nothing.returncode == 1 and nothing.stdout == ""
    assert "KUBE_BIN" in nothing.stderr and "kube-bin.tar.xz" in nothing.stderr
    assert len(nothing.stderr.strip().splitlines()) == 1


def test_kubectl_logs_of_a_deployment_through_the_real_api_server(apps, ns, kubectl):
    """pods/log: the real API server proxies to the hollow node's kubelet API (hollow_logs.py)."""
    apps.create_namespaced_deployment(ns, deployment("logs", replicas=1))
    wait_until(lambda: apps.read_namespaced_deployment("logs", ns).status, lambda s: s.ready_replicas == 1)
    out = wait_for(lambda: (lambda o: o if "seq=2" in o else None)(
        kubectl("-n", ns, "logs", "deployment/logs", "--timestamps").stdout), what="three log lines")
    lines = out.splitlines()
    assert lines[0].endswith(f"sandbox: container web ({NGINX}) started on hollow-1")
    assert lines[1].endswith(" GET / 200 seq=1") and lines[2].endswith(" GET / 200 seq=2")
    assert kubectl("-n", ns, "logs", "deployment/logs", "--tail=1").stdout.count("\n") == 1
