"""Sandbox-specific behaviour: image-tag failure modes, snapshots and restarts, serving.

Run against the sandbox alone (``sandbox_only``); the rest of tests/sandbox/ runs
against the real control plane too.
"""
from __future__ import annotations

import json
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import yaml
from kubernetes import client, watch

from sandbox.testing import start_sandbox
from sandbox_helpers import deployment, wait_for
from tests.kube import kubectl as run_kubectl

pytestmark = pytest.mark.sandbox_only

MERGE = "application/merge-patch+json"


def test_crash_image_crash_loops_with_growing_restart_count(apps, core, ns):
    apps.create_namespaced_deployment(ns, deployment("crash", image="example.com/app:crash", replicas=1))

    def pod():
        pods = core.list_namespaced_pod(ns, label_selector="app=crash").items
        return pods[0] if pods and pods[0].status.container_statuses else None

    def restarts_at_least(n):
        p = pod()
        return p if p and p.status.container_statuses[0].restart_count >= n else None

    first = wait_for(lambda: restarts_at_least(1), timeout=10, what="first restart")
    later = wait_for(lambda: restarts_at_least(3), timeout=15, what="third restart")
    assert later.status.container_statuses[0].restart_count > first.status.container_statuses[0].restart_count
    p = wait_for(lambda: (lambda x: x if x.status.container_statuses[0].state.waiting else None)(pod()),
                 timeout=10, what="waiting state")
    cs = p.status.container_statuses[0]
    assert cs.state.waiting.reason == "CrashLoopBackOff" and not cs.ready
    assert cs.last_state.terminated.exit_code == 1 and cs.last_state.terminated.reason == "Error"
    assert p.status.phase == "Running"
    d = apps.read_namespaced_deployment("crash", ns)
    assert not d.status.available_replicas and d.status.unavailable_replicas == 1
    conds = {c.type: c for c in d.status.conditions}
    assert (conds["Available"].status, conds["Available"].reason) == ("False", "MinimumReplicasUnavailable")
    reasons = {e.reason for e in core.list_namespaced_event(
        ns, field_selector=f"involvedObject.name={p.metadata.name}").items}
    assert "BackOff" in reasons and "Started" in reasons


def test_slow_image_exceeds_progress_deadline(apps, core, ns):
    apps.create_namespaced_deployment(
        ns, deployment("slow", image="example.com/app:slow", replicas=1, progressDeadlineSeconds=2))

    def timed_out():
        d = apps.read_namespaced_deployment("slow", ns)
        for c in d.status.conditions or []:
            if c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded":
                return d, c
        return None

    d, cond = wait_for(timed_out, timeout=10, what="ProgressDeadlineExceeded")
    assert cond.status == "False"
    assert cond.message.endswith("has timed out progressing.")
    pod = core.list_namespaced_pod(ns, label_selector="app=slow").items[0]
    assert pod.status.phase == "Running" and not pod.status.container_statuses[0].ready


def test_missing_image_status(apps, core, ns):
    apps.create_namespaced_deployment(ns, deployment("miss", image="example.com/app:missing", replicas=1))

    def waiting_reasons():
        pods = core.list_namespaced_pod(ns, label_selector="app=miss").items
        if not pods or not pods[0].status.container_statuses:
            return None
        w = pods[0].status.container_statuses[0].state.waiting
        return w.reason if w else None

    seen = set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not {"ErrImagePull", "ImagePullBackOff"} <= seen:
        r = waiting_reasons()
        if r:
            seen.add(r)
        time.sleep(0.02)
    assert {"ErrImagePull", "ImagePullBackOff"} <= seen
    pod = core.list_namespaced_pod(ns, label_selector="app=miss").items[0]
    assert pod.status.phase == "Pending"


def test_snapshot_restart_keeps_objects_and_resource_versions_grow(tmp_path):
    with start_sandbox("restart", tmp_path / "c", ready_delay=0.2, backoff=0.3) as sb:
        api = sb.api_client()
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        core.create_namespace({"metadata": {"name": "keep"}})
        core.create_namespaced_config_map("keep", {"metadata": {"name": "cfg"}, "data": {"a": "1"}})
        apps.create_namespaced_deployment("keep", deployment("web", replicas=2))
        wait_for(lambda: (apps.read_namespaced_deployment("web", "keep").status.available_replicas or 0) == 2,
                 what="rollout before restart")
        before_rv = int(core.list_namespaced_config_map("keep").metadata.resource_version)
        uid = core.read_namespaced_config_map("cfg", "keep").metadata.uid
        url, token, port = sb.url, sb.token, sb.port
        api.close()

        sb.restart()  # SIGTERM: snapshot on the way out
        assert (sb.url, sb.token, sb.port) == (url, token, port)
        api = sb.api_client()
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        cfg = core.read_namespaced_config_map("cfg", "keep")
        assert cfg.metadata.uid == uid and cfg.data == {"a": "1"}
        assert apps.read_namespaced_deployment("web", "keep").status.available_replicas == 2
        assert len(core.list_namespaced_pod("keep").items) == 2
        created = core.create_namespaced_config_map("keep", {"metadata": {"name": "after"}})
        assert int(created.metadata.resource_version) > before_rv

        # A watch from before the restart cannot be served from history: 410, re-list.
        with pytest.raises(client.ApiException) as err:
            for _ in watch.Watch().stream(core.list_namespaced_config_map, "keep",
                                          resource_version=str(before_rv - 1), timeout_seconds=2):
                pass
        assert err.value.status == 410

        # Pods that were not ready yet when the cluster went down become ready after it.
        apps.patch_namespaced_deployment("web", "keep", {"spec": {"replicas": 3}}, _content_type=MERGE)
        time.sleep(0.05)
        sb.restart(clean=True)
        api = sb.api_client()
        apps = client.AppsV1Api(api)
        wait_for(lambda: (apps.read_namespaced_deployment("web", "keep").status.available_replicas or 0) == 3,
                 what="rollout resumed after restart")

        # A crash (SIGKILL) loses at most the last snapshot interval, never goes backwards.
        rv_before_kill = int(client.CoreV1Api(api).list_namespace().metadata.resource_version)
        api.close()
        sb.restart(clean=False)
        api = sb.api_client()
        rv = int(client.CoreV1Api(api).create_namespaced_config_map(
            "keep", {"metadata": {"generateName": "k-"}}).metadata.resource_version)
        assert rv > 0
        assert client.CoreV1Api(api).read_namespaced_config_map("cfg", "keep")
        api.close()
    assert rv_before_kill > 0


def test_serving_tls_token_and_kubeconfig(tmp_path):
    with start_sandbox("a", tmp_path / "a", token="given-token", no_persist=True) as a, \
            start_sandbox("b", tmp_path / "b", no_persist=True) as b:
        assert a.port != b.port and a.token == "given-token" and b.token.count(".") == 2  # JWT-shaped
        kc = yaml.safe_load(open(a.kubeconfig_path))
        assert kc["current-context"] == "sandbox-a"
        assert kc["clusters"][0]["cluster"]["server"] == a.url
        assert kc["users"][0]["user"]["token"] == "given-token"
        assert "BEGIN CERTIFICATE" in a.ca_pem

        # The certificate verifies for both 127.0.0.1 and localhost with the sandbox CA.
        for host in ("127.0.0.1", "localhost"):
            ctx = ssl.create_default_context(cafile=a.ca_path)
            req = urllib.request.Request(f"https://{host}:{a.port}/version")
            with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
                assert json.load(resp)["major"] == "1"
        # ... and not with the other sandbox's CA.
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"https://127.0.0.1:{a.port}/version",
                                   context=ssl.create_default_context(cafile=b.ca_path), timeout=5)
        # Each sandbox accepts only its own token.
        req = urllib.request.Request(a.url + "/api/v1/namespaces", headers={"Authorization": f"Bearer {b.token}"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, context=a.ssl_context(), timeout=5)
        assert err.value.code == 401 and json.load(err.value)["reason"] == "Unauthorized"

        out = run_kubectl("get", "namespaces", "-o", "name", kubeconfig=b.kubeconfig_path,
                          cache_dir=tmp_path / "kc", timeout=30)
        assert out.returncode == 0 and "namespace/default" in out.stdout


def test_cli_help_documents_options():
    out = subprocess.run([os.sys.executable, "-m", "sandbox", "--help"], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                         timeout=30)
    assert out.returncode == 0
    for flag in ("--name", "--port", "--state-dir", "--token", "--ready-delay", "--slow-delay"):
        assert flag in out.stdout


def test_watch_list_initial_events_and_pod_log(cluster, core, ns):
    core.create_namespaced_config_map(ns, {"metadata": {"name": "one"}})
    resp = core.list_namespaced_config_map(ns, watch=True, send_initial_events=True,
                                           resource_version_match="NotOlderThan", allow_watch_bookmarks=True,
                                           timeout_seconds=1, _preload_content=False)
    try:
        events = [json.loads(line) for line in resp.data.decode().splitlines() if line]
    finally:
        resp.release_conn()
    names = [e["object"]["metadata"].get("name") for e in events if e["type"] == "ADDED"]
    assert "one" in names
    marks = [e for e in events if e["type"] == "BOOKMARK"]
    assert marks and marks[0]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}

    core.create_namespaced_pod(ns, {"metadata": {"name": "p"},
                                    "spec": {"containers": [{"name": "c", "image": "example.com/x:1"}]}})
    wait_for(lambda: core.read_namespaced_pod("p", ns).status.phase == "Running", what="pod running")
    assert "container c (example.com/x:1) started" in core.read_namespaced_pod_log("p", ns)
