"""``pods/log`` as kubectl and the official client use it: tail, since, timestamps, limitBytes,
previous, follow (streaming until the pod goes), and the refusals worded as the real API server
and kubelet word them.

Runs against the sandbox and the real control plane, whose API server proxies ``pods/log`` to
the hollow node's ``/containerLogs`` (tests/realkube/hollow_node.py) - both write the lines of
``sandbox/podlogs.py``: ``<time> sandbox: container C (IMAGE) started on NODE``, then
``<time> GET / 200 seq=<k>`` every 1/log_rate seconds.
"""
from __future__ import annotations

import json
import re
import subprocess
import time
from datetime import datetime

import pytest
from kubernetes import client

from sandbox_helpers import IMAGE_A, IMAGE_MISSING, wait_for
from tests.kube import executable

LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (.*)$")
STAMPED = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (.*)$")


def pod_body(name: str, image: str = IMAGE_A, containers: tuple = ("c",)) -> dict:
    return {"metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 0,
                     "containers": [{"name": c, "image": image} for c in containers]}}


def running_pod(core, ns: str, name: str, image: str = IMAGE_A, containers: tuple = ("c",)):
    core.create_namespaced_pod(ns, pod_body(name, image, containers))
    return wait_for(lambda: (lambda p: p if p.status.phase == "Running" and all(
        s.state.running for s in p.status.container_statuses or [None]) else None)(core.read_namespaced_pod(name, ns)),
        what=f"pod {name} running")


def seqs(text: str) -> list[int]:
    return [int(m.group(1)) for m in re.finditer(r"GET / 200 seq=(\d+)$", text, re.M)]


def log_lines(core, ns, name, at_least: int, **kw) -> list[str]:
    return wait_for(lambda: (lambda lines: lines if len(lines) >= at_least else None)(
        core.read_namespaced_pod_log(name, ns, **kw).splitlines()), what=f"{at_least} log lines of {name}")


def line_time(line: str) -> float:
    return datetime.fromisoformat(LINE.match(line).group(1)[:-1] + "+00:00").timestamp()


def api_error(exc: client.ApiException) -> tuple[int, str]:
    return exc.status, json.loads(exc.body)["message"]


def test_kubectl_logs_tail_since_timestamps_limit(kubectl, core, ns):
    pod = running_pod(core, ns, "web")
    lines = wait_for(lambda: (lambda ls: ls if len(ls) >= 6 and line_time(ls[-1]) - line_time(ls[0]) > 2.5 else None)(
        core.read_namespaced_pod_log("web", ns).splitlines()), what="2.5 s of logs")
    out = kubectl("-n", ns, "logs", "web").stdout.splitlines()
    assert len(out) >= len(lines)
    first = LINE.match(out[0])
    assert first and first.group(2) == f"sandbox: container c ({IMAGE_A}) started on {pod.spec.node_name}"
    assert seqs("\n".join(out)) == list(range(1, len(out)))  # one line per tick, none missing
    for line in out:
        assert LINE.match(line), line

    tail = kubectl("-n", ns, "logs", "web", "--tail=2").stdout.splitlines()
    assert len(tail) == 2 and seqs("\n".join(tail))[1] == seqs("\n".join(tail))[0] + 1
    assert seqs("\n".join(tail))[0] >= len(out) - 2  # the newest two, never older ones

    stamped = kubectl("-n", ns, "logs", "web", "--timestamps", "--tail=3").stdout.splitlines()
    assert len(stamped) == 3
    for line in stamped:
        m = STAMPED.match(line)
        assert m, line
        assert m.group(1)[:23] == m.group(2)[:23]  # the kubelet's stamp is the line's own time

    before = time.time()
    recent = kubectl("-n", ns, "logs", "web", "--since=1s", "--timestamps").stdout.splitlines()
    assert recent and len(recent) < len(log_lines(core, ns, "web", 1))
    for line in recent:
        t = datetime.fromisoformat(STAMPED.match(line).group(1)[:26] + "+00:00").timestamp()
        assert t >= before - 1.5, line

    assert len(kubectl("-n", ns, "logs", "web", "--limit-bytes=20").stdout.encode()) == 20
    prev = kubectl("-n", ns, "logs", "web", "--previous", check=False)
    assert prev.returncode != 0
    assert 'previous terminated container "c" in pod "web" not found' in prev.stderr


def test_kubectl_logs_follow_streams_until_the_pod_is_deleted(kubectl, core, ns):
    running_pod(core, ns, "follow")
    log_lines(core, ns, "follow", 2)
    proc = subprocess.Popen([executable(), "--kubeconfig", kubectl.keywords["kubeconfig"], "-n", ns, "logs", "-f",
                             "follow", "--tail=1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        got = [proc.stdout.readline() for _ in range(4)]  # lines keep coming while it runs
        assert all(got), got
        numbers = seqs("".join(got))
        assert numbers == list(range(numbers[0], numbers[0] + 4)), got
        core.delete_namespaced_pod("follow", ns, grace_period_seconds=0)
        rest, err = proc.communicate(timeout=30)  # the stream ends with the container
        assert proc.returncode == 0, err
        assert seqs(rest) == list(range(numbers[-1] + 1, numbers[-1] + 1 + len(seqs(rest))))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_client_reads_and_streams_pod_logs(core, ns):
    running_pod(core, ns, "cli")
    log_lines(core, ns, "cli", 3)
    lines = core.read_namespaced_pod_log("cli", ns, tail_lines=2, timestamps=True).splitlines()
    assert len(lines) == 2 and all(STAMPED.match(line) for line in lines)
    stream = core.read_namespaced_pod_log("cli", ns, follow=True, tail_lines=0, _preload_content=False)
    try:
        assert stream.status == 200 and stream.headers["Content-Type"].startswith("text/plain")
        buf = b""
        for chunk in stream.stream(64):  # chunk by chunk, as they arrive
            buf += chunk
            if buf.count(b"\n") >= 3:
                break
        numbers = seqs(buf.decode())
        assert len(numbers) >= 3 and numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    finally:
        stream.release_conn()


def test_pod_log_refusals_are_worded_like_the_api_server_and_kubelet(kubectl, core, ns):
    running_pod(core, ns, "two", containers=("a", "b"))
    with pytest.raises(client.ApiException) as err:
        core.read_namespaced_pod_log("nope", ns)
    assert api_error(err.value) == (404, 'pods "nope" not found')
    with pytest.raises(client.ApiException) as err:
        core.read_namespaced_pod_log("two", ns)
    assert api_error(err.value) == (400, "a container name must be specified for pod two, choose one of: [a b]")
    with pytest.raises(client.ApiException) as err:
        core.read_namespaced_pod_log("two", ns, container="zz")
    assert api_error(err.value) == (400, "container zz is not valid for pod two")
    with pytest.raises(client.ApiException) as err:
        core.read_namespaced_pod_log("two", ns, container="a", tail_lines=-1)
    assert api_error(err.value) == (
        422, 'PodLogOptions "two" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0')
    raw = kubectl("get", "--raw", f"/api/v1/namespaces/{ns}/pods/two/log?container=a&sinceSeconds=5"
                                  "&sinceTime=2024-01-01T00:00:00Z", check=False)
    assert raw.returncode != 0 and ('PodLogOptions "two" is invalid: []: Forbidden: at most one of `sinceTime` '
                                    'or `sinceSeconds` may be specified') in raw.stderr
    raw = kubectl("get", "--raw", f"/api/v1/namespaces/{ns}/pods/two/log?container=a&tailLines=abc", check=False)
    assert raw.returncode != 0 and 'strconv.ParseInt: parsing "abc": invalid syntax' in raw.stderr
    assert "container a (" in core.read_namespaced_pod_log("two", ns, container="a")
    assert "container b (" in core.read_namespaced_pod_log("two", ns, container="b")

    core.create_namespaced_pod(ns, pod_body("pull", IMAGE_MISSING))
    wait_for(lambda: (core.read_namespaced_pod("pull", ns).status.container_statuses or [None])[0],
             what="a container status")
    with pytest.raises(client.ApiException) as err:
        core.read_namespaced_pod_log("pull", ns)
    status, message = api_error(err.value)
    assert status == 400 and message.startswith('container "c" in pod "pull" is waiting to start: '), message


def test_an_unscheduled_pod_has_no_log_yet(core, ns):
    core.create_namespaced_pod(ns, {"metadata": {"name": "nowhere"},
                                    "spec": {"schedulerName": "no-such-scheduler",
                                             "containers": [{"name": "c", "image": IMAGE_A}]}})
    resp = core.read_namespaced_pod_log("nowhere", ns, _preload_content=False)
    assert (resp.status, resp.data) == (204, b"")  # no node, no kubelet to ask: "no content"
    assert core.read_namespaced_pod("nowhere", ns).spec.node_name is None


def test_a_crash_looping_container_shows_its_last_run(core, ns):
    core.create_namespaced_pod(ns, pod_body("boom", "example.com/app:crash"))
    wait_for(lambda: (core.read_namespaced_pod("boom", ns).status.container_statuses or [None])[0] and
             core.read_namespaced_pod("boom", ns).status.container_statuses[0].restart_count >= 1,
             what="a restart")
    last = wait_for(lambda: core.read_namespaced_pod_log("boom", ns, previous=True), what="previous logs")
    lines = last.splitlines()
    assert lines[0].endswith("sandbox: container c (example.com/app:crash) started on "
                             + core.read_namespaced_pod("boom", ns).spec.node_name)
    assert lines[-1].endswith("sandbox: fatal error, exiting with status 1") and len(lines) == 2
