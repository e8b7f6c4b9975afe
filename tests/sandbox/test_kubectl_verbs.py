"""kubectl's everyday verbs against the cluster: describe, logs -f, exec, attach, port-forward,
rollout status/restart/undo/history, scale, delete, get events / events, get -w.  What kubectl
printed is checked, and the state afterwards through the official Python client.

exec, attach and port-forward are ``sandbox_only``: what a command prints there is the sandbox's
simulated container (sandbox/shell.py, sandbox/portforward.py). The rest also runs against the real
control plane. test_kubectl.py has apply/rollout status/rollover, scale up and delete of a
Deployment, and namespace deletion; these tests do not repeat them.
"""
from __future__ import annotations

import contextlib
import os
import pty
import queue
import re
import select
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
import yaml

from sandbox_helpers import IMAGE_A, IMAGE_MISSING, deployment, wait_for
from tests.kube import executable

SEQ = re.compile(r"GET / 200 seq=(\d+)$")


def manifest(ns: str, replicas: int = 2) -> str:
    cfg = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config", "namespace": ns},
           "data": {"greeting": "hello from the configmap\n", "mode": "production"}}
    dep = deployment("web", replicas=replicas)
    dep["metadata"]["namespace"] = ns
    c = dep["spec"]["template"]["spec"]["containers"][0]
    c["ports"] = [{"containerPort": 8080, "name": "http"}]
    c["env"] = [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "web-config", "key": "mode"}}}]
    c["volumeMounts"] = [{"name": "config", "mountPath": "/etc/web"}]
    dep["spec"]["template"]["spec"]["volumes"] = [{"name": "config", "configMap": {"name": "web-config"}}]
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}}
    return yaml.safe_dump_all([cfg, dep, svc])


@pytest.fixture
def web(kubectl, ns, tmp_path):
    """The web Deployment (2 replicas), its ConfigMap and Service, rolled out; the manifest's path."""
    path = tmp_path / "web.yaml"
    path.write_text(manifest(ns))
    kubectl("apply", "-f", str(path))
    kubectl("-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")
    return path


def pod_names(core, ns: str, selector: str = "app=web") -> list[str]:
    return sorted(p.metadata.name for p in core.list_namespaced_pod(ns, label_selector=selector).items
                  if not p.metadata.deletion_timestamp)


@contextlib.contextmanager
def background(kubectl, *args: str):
    """``kubectl *args`` running; ``proc.lines`` is a queue of its stdout lines (None at the end)."""
    proc = subprocess.Popen([executable(), "--kubeconfig", kubectl.keywords["kubeconfig"], *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.lines = queue.Queue()

    def pump():
        for line in proc.stdout:
            proc.lines.put(line.rstrip("\n"))
        proc.lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def read_lines(proc, n: int, timeout: float = 20, match=None) -> list[str]:
    """The first ``n`` stdout lines (that ``match`` accepts) within ``timeout`` seconds."""
    out, deadline = [], time.time() + timeout
    while len(out) < n:
        try:
            line = proc.lines.get(timeout=max(0.01, deadline - time.time()))
        except queue.Empty:
            raise AssertionError(f"only {out} after {timeout}s") from None
        if line is None:
            raise AssertionError(f"kubectl ended after {out}: {proc.stderr.read()}")
        if match is None or match(line):
            out.append(line)
    return out


def test_describe_pod_deployment_and_service(kubectl, ns, web, core):
    pod = pod_names(core, ns)[0]
    out = kubectl("-n", ns, "describe", "pod", pod).stdout
    assert re.search(rf"^Name:\s+{pod}$", out, re.M) and re.search(rf"^Namespace:\s+{ns}$", out, re.M)
    assert re.search(r"^Status:\s+Running$", out, re.M)
    assert re.search(rf"^Controlled By:\s+ReplicaSet/web-\w+$", out, re.M)
    assert re.search(rf"^\s+Image:\s+{re.escape(IMAGE_A)}$", out, re.M)
    assert re.search(r"^\s+MODE:\s+<set to the key 'mode' of config map 'web-config'>", out, re.M)
    assert re.search(r"^\s+/etc/web from config \(rw\)$", out, re.M)
    assert re.search(r"Normal\s+Scheduled\s+.*Successfully assigned " + re.escape(f"{ns}/{pod}"), out)
    assert re.search(r"Normal\s+Started\s+", out)

    out = kubectl("-n", ns, "describe", "deployment", "web").stdout
    assert re.search(r"^Replicas:\s+2 desired \| 2 updated \| 2 total \| 2 available \| 0 unavailable$", out, re.M)
    assert re.search(r"^StrategyType:\s+RollingUpdate$", out, re.M)
    assert re.search(r"^NewReplicaSet:\s+web-\w+ \(2/2 replicas created\)$", out, re.M)
    assert re.search(r"ScalingReplicaSet\s+.*Scaled up replica set web-\w+ from 0 to 2", out)

    out = kubectl("-n", ns, "describe", "service", "web").stdout
    svc = core.read_namespaced_service("web", ns)
    assert re.search(r"^Selector:\s+app=web$", out, re.M) and re.search(r"^Type:\s+ClusterIP$", out, re.M)
    assert re.search(rf"^IP:\s+{re.escape(svc.spec.cluster_ip)}$", out, re.M)
    assert re.search(r"^Port:\s+<unset>\s+80/TCP$", out, re.M) and re.search(r"^TargetPort:\s+http/TCP$", out, re.M)


def test_logs_follow_a_deployment(kubectl, ns, web, core):
    with background(kubectl, "-n", ns, "logs", "-f", "deployment/web", "--tail=1") as proc:
        lines = read_lines(proc, 3, match=SEQ.search)
    seqs = [int(SEQ.search(line).group(1)) for line in lines]
    assert seqs == list(range(seqs[0], seqs[0] + 3))  # one pod's lines, in order, none skipped
    err = proc.stderr.read()
    m = re.search(r"Found 2 pods, using pod/(web-\S+)", err)
    assert m and m.group(1) in pod_names(core, ns)


def test_rollout_restart_history_and_undo(kubectl, ns, web, apps):
    def template():
        return apps.read_namespaced_deployment("web", ns).spec.template

    def replica_sets():
        return {rs.metadata.name: rs for rs in apps.list_namespaced_replica_set(ns).items}

    first = set(replica_sets())
    history = kubectl("-n", ns, "rollout", "history", "deployment/web").stdout.split()
    assert history[-4:] == ["REVISION", "CHANGE-CAUSE", "1", "<none>"]

    assert "deployment.apps/web restarted" in kubectl("-n", ns, "rollout", "restart", "deployment/web").stdout
    kubectl("-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")
    restarted_at = template().metadata.annotations["kubectl.kubernetes.io/restartedAt"]
    sets = replica_sets()
    new = [rs for name, rs in sets.items() if name not in first]
    assert len(sets) == 2 and len(new) == 1  # a restart is a new template: a new ReplicaSet
    assert new[0].spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"] == restarted_at
    assert new[0].status.ready_replicas == 2 and all(sets[n].spec.replicas == 0 for n in first)
    revisions = kubectl("-n", ns, "rollout", "history", "deployment/web").stdout
    assert re.findall(r"^(\d+)\s", revisions, re.M) == ["1", "2"]
    rev2 = kubectl("-n", ns, "rollout", "history", "deployment/web", "--revision=2").stdout
    assert "deployment.apps/web with revision #2" in rev2 and f"restartedAt: {restarted_at}" in rev2

    assert "deployment.apps/web rolled back" in kubectl("-n", ns, "rollout", "undo", "deployment/web").stdout
    kubectl("-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")
    assert "kubectl.kubernetes.io/restartedAt" not in (template().metadata.annotations or {})
    sets = replica_sets()
    (old_name,) = first
    assert len(sets) == 2 and sets[old_name].spec.replicas == 2  # the first ReplicaSet is back, not a third
    assert sets[old_name].metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    dep = apps.read_namespaced_deployment("web", ns)
    assert dep.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    revisions = kubectl("-n", ns, "rollout", "history", "deployment/web").stdout
    assert re.findall(r"^(\d+)\s", revisions, re.M) == ["2", "3"]


def test_scale_with_preconditions_and_to_zero(kubectl, ns, web, apps, core):
    res = kubectl("-n", ns, "scale", "deployment/web", "--current-replicas=3", "--replicas=1", check=False)
    assert res.returncode != 0 and "Expected replicas to be 3, was 2" in res.stderr
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 2
    out = kubectl("-n", ns, "scale", "deployment/web", "--current-replicas=2", "--replicas=0").stdout
    assert "deployment.apps/web scaled" in out
    wait_for(lambda: not core.list_namespaced_pod(ns, label_selector="app=web").items, what="pods gone")
    # the Deployment's status follows its ReplicaSet's, a moment after the last pod went
    wait_for(lambda: (lambda st: not st.replicas and not st.available_replicas)(
        apps.read_namespaced_deployment("web", ns).status), what="the status to count no replicas")


def test_delete_by_name_label_and_file(kubectl, ns, web, apps, core):
    victim = pod_names(core, ns)[0]
    assert f'pod "{victim}" deleted' in kubectl("-n", ns, "delete", "pod", victim).stdout
    wait_for(lambda: victim not in pod_names(core, ns) and len(pod_names(core, ns)) == 2,
             what="the ReplicaSet replaced the deleted pod")

    res = kubectl("-n", ns, "delete", "pod", "ghost", check=False)
    assert res.returncode == 1 and 'Error from server (NotFound): pods "ghost" not found' in res.stderr
    res = kubectl("-n", ns, "delete", "pod", "ghost", "--ignore-not-found")
    assert res.stdout == ""

    kubectl("-n", ns, "apply", "-f", "-", stdin={"apiVersion": "v1", "kind": "ConfigMap",
                                                 "metadata": {"name": "extra"}, "data": {"k": "v"}})
    kubectl("-n", ns, "label", "configmap", "extra", "tier=scratch")
    assert 'configmap "extra" deleted' in kubectl("-n", ns, "delete", "configmap", "-l", "tier=scratch").stdout
    assert [c.metadata.name for c in core.list_namespaced_config_map(ns).items if c.metadata.name == "extra"] == []

    out = kubectl("delete", "-f", str(web)).stdout
    for line in ('configmap "web-config" deleted', 'deployment.apps "web" deleted', 'service "web" deleted'):
        assert line in out
    assert not apps.list_namespaced_deployment(ns).items and not core.list_namespaced_service(ns).items
    wait_for(lambda: not core.list_namespaced_pod(ns).items, what="pods garbage-collected")


def test_get_events_and_the_events_command(kubectl, ns, web, core):
    pod = pod_names(core, ns)[0]
    table = kubectl("-n", ns, "get", "events").stdout.splitlines()
    assert table[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    rows = [line.split(None, 4) for line in table[1:]]
    assert [r for r in rows if r[2] == "Scheduled" and r[3] == f"pod/{pod}"]
    assert [r for r in rows if r[2] == "ScalingReplicaSet" and r[3] == "deployment/web"]

    out = kubectl("-n", ns, "events", "--for", f"pod/{pod}").stdout.splitlines()
    assert out[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    reasons = [line.split()[2] for line in out[1:]]
    assert "Scheduled" in reasons and "Started" in reasons
    assert all(line.split()[3] == f"Pod/{pod}" for line in out[1:])  # only that pod's

    core.create_namespaced_pod(ns, {"metadata": {"name": "broken"},
                                    "spec": {"containers": [{"name": "c", "image": IMAGE_MISSING}]}})
    warnings = wait_for(lambda: (lambda o: o if "Pod/broken" in o else None)(
        kubectl("-n", ns, "events", "--types=Warning").stdout), timeout=30, what="a Warning event")
    assert all(line.split()[1] == "Warning" for line in warnings.splitlines()[1:])
    assert re.search(r"Warning\s+Failed\s+Pod/broken", warnings)


def test_get_watch_prints_rows_as_things_change(kubectl, ns, web, core):
    with background(kubectl, "-n", ns, "get", "pods", "-w") as proc:
        head = read_lines(proc, 3)
        assert head[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        assert sorted(line.split()[0] for line in head[1:]) == pod_names(core, ns)
        core.create_namespaced_pod(ns, {"metadata": {"name": "late"},
                                        "spec": {"containers": [{"name": "c", "image": IMAGE_A}]}})
        rows = read_lines(proc, 1, match=lambda line: line.startswith("late ") and "Running" in line)
    assert rows[0].split()[1:3] == ["1/1", "Running"]

    with background(kubectl, "-n", ns, "get", "deployment", "web", "-w", "-o", "name") as proc:
        assert read_lines(proc, 1) == ["deployment.apps/web"]


# ---------------------------------------------------------------------- the sandbox's containers

@pytest.mark.sandbox_only
def test_kubectl_exec(kubectl, ns, web, core):
    def ex(*args, **kw):
        return kubectl("-n", ns, "exec", *args, check=False, **kw)

    res = ex("deployment/web", "--", "echo", "hello", "world")
    assert (res.returncode, res.stdout) == (0, "hello world\n")
    env = dict(line.split("=", 1) for line in ex("deployment/web", "--", "env").stdout.splitlines())
    assert env["MODE"] == "production" and env["HOSTNAME"] in pod_names(core, ns)
    assert ex("deployment/web", "--", "cat", "/etc/web/greeting").stdout == "hello from the configmap\n"
    assert ex("deployment/web", "--", "ls", "/etc/web").stdout.split() == ["greeting", "mode"]

    res = ex("deployment/web", "--", "sh", "-c", "echo before; exit 3")
    assert (res.returncode, res.stdout) == (3, "before\n")
    assert "command terminated with exit code 3" in res.stderr
    res = ex("deployment/web", "--", "sh", "-c", "nosuchtool")
    assert res.returncode == 127 and "sh: nosuchtool: not found" in res.stderr
    res = ex("deployment/web", "--", "nosuchtool")
    assert res.returncode == 1
    assert 'exec: "nosuchtool": executable file not found in $PATH' in res.stderr

    res = ex("-i", "deployment/web", "--", "cat", stdin="line one\nline two\n")
    assert (res.returncode, res.stdout) == (0, "line one\nline two\n")
    res = ex("-i", "deployment/web", "--", "sh", stdin="echo $MODE\nhostname\nexit 4\necho never\n")
    assert res.returncode == 4 and res.stdout.splitlines()[0] == "production"
    assert res.stdout.splitlines()[1] in pod_names(core, ns) and "never" not in res.stdout

    res = ex("deployment/web", "-c", "nope", "--", "ls")
    assert res.returncode == 1 and "container nope is not valid for pod web-" in res.stderr


@pytest.mark.sandbox_only
def test_kubectl_exec_picks_the_container(kubectl, ns, core):
    containers = [{"name": n, "image": IMAGE_A, "env": [{"name": "WHO", "value": n}]} for n in ("a", "b")]
    for name, annotations in (("two", {}), ("annotated", {"kubectl.kubernetes.io/default-container": "b"})):
        core.create_namespaced_pod(ns, {"metadata": {"name": name, "annotations": annotations},
                                        "spec": {"containers": containers}})
        wait_for(lambda: core.read_namespaced_pod(name, ns).status.phase == "Running", what=f"{name} running")
    res = kubectl("-n", ns, "exec", "two", "--", "printenv", "WHO")
    assert res.stdout == "a\n" and 'Defaulted container "a" out of: a, b' in res.stderr
    assert kubectl("-n", ns, "exec", "two", "-c", "b", "--", "printenv", "WHO").stdout == "b\n"
    assert kubectl("-n", ns, "exec", "annotated", "--", "printenv", "WHO").stdout == "b\n"

    core.create_namespaced_pod(ns, {"metadata": {"name": "pulling"},
                                    "spec": {"containers": [{"name": "c", "image": IMAGE_MISSING}]}})
    wait_for(lambda: core.read_namespaced_pod("pulling", ns).spec.node_name, what="pulling scheduled")
    res = kubectl("-n", ns, "exec", "pulling", "--", "ls", check=False)
    assert res.returncode == 1
    assert 'error: Internal error occurred: unable to upgrade connection: container not found ("c")' in res.stderr


@pytest.mark.sandbox_only
def test_kubectl_attach_shows_what_the_container_writes(kubectl, ns, web, core):
    pod = pod_names(core, ns)[0]
    with background(kubectl, "-n", ns, "attach", pod) as proc:
        seqs = [int(SEQ.search(line).group(1)) for line in read_lines(proc, 2, match=SEQ.search)]
    assert seqs[1] == seqs[0] + 1


def forwarded_port(proc, remote: int) -> int:
    line = read_lines(proc, 1, match=lambda ln: ln.startswith("Forwarding from 127.0.0.1:"))[0]
    m = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)$", line)
    assert m and int(m.group(2)) == remote, line
    return int(m.group(1))


def http_get(port: int, path: str = "/") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        assert resp.status == 200
        return resp.read().decode()


@pytest.mark.sandbox_only
def test_kubectl_port_forward(kubectl, ns, web, core):
    pods = pod_names(core, ns)
    with background(kubectl, "-n", ns, "port-forward", f"pod/{pods[0]}", ":8080") as proc:
        port = forwarded_port(proc, 8080)
        assert http_get(port) == f"hello from {pods[0]} ({IMAGE_A})\n"
        assert http_get(port, "/again") == f"hello from {pods[0]} ({IMAGE_A})\n"  # a connection each
    # A Service or Deployment resolves to one of its pods (the Service's port 80 is targetPort "http").
    for target, remote in (("svc/web", "80"), ("deployment/web", "8080")):
        with background(kubectl, "-n", ns, "port-forward", target, f":{remote}") as proc:
            body = http_get(forwarded_port(proc, 8080))
            assert re.fullmatch(rf"hello from (web-\S+) \({re.escape(IMAGE_A)}\)\n", body)
            assert body.split()[2] in pods

    # Nothing listens on a port no container declares: kubectl reports the kubelet's error and stops.
    with background(kubectl, "-n", ns, "port-forward", f"pod/{pods[0]}", ":9999") as proc:
        port = forwarded_port(proc, 9999)
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            http_get(port)
        proc.wait(20)
        err = proc.stderr.read()
    assert proc.returncode == 1
    assert "an error occurred forwarding" in err and "-> 9999: error forwarding port 9999 to pod " in err
    assert "failed to connect to localhost:9999 inside namespace" in err and "connection refused" in err
    assert "error: lost connection to pod" in err


@pytest.mark.sandbox_only
def test_kubectl_exec_interactive_shell_on_a_terminal(kubectl, ns, web, core):
    """``kubectl exec -it POD -- sh`` on a terminal: the prompt, the echo of what is typed, CR LF
    line ends, and the shell's exit code as kubectl's."""
    pod = pod_names(core, ns)[0]
    master, slave = pty.openpty()
    proc = subprocess.Popen([executable(), "--kubeconfig", kubectl.keywords["kubeconfig"], "-n", ns, "exec", "-it",
                             pod, "--", "sh"], stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    screen = b""

    def until(text: bytes, timeout: float = 15) -> None:
        nonlocal screen
        deadline = time.time() + timeout
        while text not in screen and time.time() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    screen += os.read(master, 4096)
                except OSError:
                    break
        assert text in screen, screen

    try:
        until(b"/ # ")
        os.write(master, b"echo $MODE\r")
        until(b"echo $MODE\r\nproduction\r\n/ # ")
        os.write(master, b"exit 7\r")
        assert proc.wait(15) == 7
        until(b"command terminated with exit code 7")
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


@pytest.mark.sandbox_only
def test_kubectl_cp_both_ways(kubectl, ns, web, core, tmp_path):
    pod = pod_names(core, ns)[0]
    out = kubectl("-n", ns, "cp", f"{pod}:/etc/web", str(tmp_path / "web-config"))
    assert "tar: Removing leading `/' from member names" in out.stdout  # tar's stderr, as kubectl shows it
    assert sorted(p.name for p in (tmp_path / "web-config").iterdir()) == ["greeting", "mode"]
    assert (tmp_path / "web-config" / "greeting").read_text() == "hello from the configmap\n"
    kubectl("-n", ns, "cp", f"{pod}:/etc/web/mode", str(tmp_path / "mode.txt"))
    assert (tmp_path / "mode.txt").read_text() == "production"

    (tmp_path / "upload" / "sub").mkdir(parents=True)
    (tmp_path / "upload" / "sub" / "data.txt").write_text("uploaded\n")
    kubectl("-n", ns, "cp", str(tmp_path / "upload"), f"{pod}:/tmp/upload")
    kubectl("-n", ns, "cp", str(tmp_path / "mode.txt"), f"{pod}:/tmp")  # into a directory: keeps the name
    # Files stay for the life of the container: later execs see them.
    assert kubectl("-n", ns, "exec", pod, "--", "cat", "/tmp/upload/sub/data.txt").stdout == "uploaded\n"
    assert kubectl("-n", ns, "exec", pod, "--", "ls", "/tmp").stdout.split() == ["mode.txt", "upload"]
    kubectl("-n", ns, "exec", pod, "--", "sh", "-c", "echo written > /tmp/note")
    assert kubectl("-n", ns, "exec", pod, "--", "cat", "/tmp/note").stdout == "written\n"
    other = pod_names(core, ns)[1]  # another pod, another filesystem
    res = kubectl("-n", ns, "exec", other, "--", "cat", "/tmp/note", check=False)
    assert res.returncode == 1 and "No such file or directory" in res.stderr


@pytest.mark.sandbox_only
def test_kubectl_exec_and_port_forward_over_spdy(kubectl, ns, web, core, monkeypatch):
    """kubectl's SPDY/3.1 path (its fallback when a WebSocket upgrade fails, and what older
    clients speak): a plain ``Upgrade: SPDY/3.1`` with X-Stream-Protocol-Version."""
    monkeypatch.setenv("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")
    monkeypatch.setenv("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")
    pod = pod_names(core, ns)[0]
    assert kubectl("-n", ns, "exec", pod, "--", "cat", "/etc/web/greeting").stdout == "hello from the configmap\n"
    res = kubectl("-n", ns, "exec", pod, "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert (res.returncode, res.stdout) == (3, "out\n") and "err\n" in res.stderr
    assert "command terminated with exit code 3" in res.stderr
    assert kubectl("-n", ns, "exec", "-i", pod, "--", "cat", stdin="through spdy\n").stdout == "through spdy\n"

    core.create_namespaced_pod(ns, {"metadata": {"name": "pulling"},
                                    "spec": {"containers": [{"name": "c", "image": IMAGE_MISSING}]}})
    wait_for(lambda: core.read_namespaced_pod("pulling", ns).spec.node_name, what="pulling scheduled")
    res = kubectl("-n", ns, "exec", "pulling", "--", "ls", check=False)
    assert res.returncode == 1 and 'error: unable to upgrade connection: container not found ("c")' in res.stderr

    with background(kubectl, "-n", ns, "port-forward", f"pod/{pod}", ":8080") as proc:
        port = forwarded_port(proc, 8080)
        assert http_get(port) == f"hello from {pod} ({IMAGE_A})\n"
        assert http_get(port, "/twice") == f"hello from {pod} ({IMAGE_A})\n"
