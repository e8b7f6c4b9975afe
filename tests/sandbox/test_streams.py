"""``pods/exec``, ``pods/attach`` and ``pods/portforward`` through the official Python client
(``kubernetes.stream.stream`` / ``portforward``), raw WebSocket and SPDY upgrades: the channel protocol,
the simulated container (env and mounted ConfigMap/Secret keys), exit codes, stdin, and the
refusals worded as the API server and the kubelet word them.

Sandbox only: what a command prints is the sandbox's simulated shell (sandbox/shell.py); the
real control plane's hollow node runs no containers to exec into.
"""
from __future__ import annotations

import asyncio
import base64
import http.client
import json
import ssl
import urllib.error
import urllib.request

import aiohttp
import pytest
import websocket
from kubernetes.stream import portforward, stream

from sandbox_helpers import IMAGE_A, IMAGE_MISSING, wait_for

pytestmark = pytest.mark.sandbox_only


def app_objects(core, ns: str, name: str = "app", containers: tuple = ("app",), image: str = IMAGE_A):
    core.create_namespaced_config_map(ns, {"metadata": {"name": "cfg"},
                                           "data": {"greeting": "hello from a configmap\n", "mode": "prod"}})
    core.create_namespaced_secret(ns, {"metadata": {"name": "creds"},
                                       "data": {"password": base64.b64encode(b"s3cret").decode()}})
    first = {"name": containers[0], "image": image, "ports": [{"containerPort": 8080}],
             "env": [{"name": "PLAIN", "value": "plain-value"},
                     {"name": "DERIVED", "value": "$(PLAIN)-derived"},
                     {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
                     {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                     {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
             "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"},
                              {"name": "creds", "mountPath": "/etc/app/password.txt", "subPath": "password"}]}
    spec = {"terminationGracePeriodSeconds": 0,
            "containers": [first] + [{"name": c, "image": image} for c in containers[1:]],
            "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}},
                        {"name": "creds", "secret": {"secretName": "creds"}}]}
    core.create_namespaced_pod(ns, {"metadata": {"name": name}, "spec": spec})
    if image != IMAGE_MISSING:
        def running():
            statuses = core.read_namespaced_pod(name, ns).status.container_statuses or []
            return bool(statuses) and all(s is not None and s.state and s.state.running for s in statuses)
        wait_for(running, what=f"pod {name} running")


def run(core, ns, command, name="app", **kw):
    resp = stream(core.connect_get_namespaced_pod_exec, name, ns, command=command, stdout=True, stderr=True,
                  stdin=False, tty=False, _preload_content=False, **kw)
    resp.run_forever(timeout=10)
    return resp.read_stdout(), resp.read_stderr(), resp.returncode


def test_exec_sees_the_containers_env_and_mounted_configmap_and_secret(core, ns):
    app_objects(core, ns)
    out = stream(core.connect_get_namespaced_pod_exec, "app", ns, command=["env"], stdout=True, stderr=True)
    env = dict(line.split("=", 1) for line in out.splitlines())
    assert env["PLAIN"] == "plain-value" and env["DERIVED"] == "plain-value-derived"
    assert env["MODE"] == "prod" and env["PASSWORD"] == "s3cret" and env["POD_NAME"] == "app"
    assert env["HOSTNAME"] == "app" and env["KUBERNETES_SERVICE_HOST"] and env["PATH"]

    assert run(core, ns, ["cat", "/etc/cfg/greeting"]) == ("hello from a configmap\n", "", 0)
    assert run(core, ns, ["cat", "/etc/app/password.txt"]) == ("s3cret", "", 0)
    assert run(core, ns, ["ls", "/etc/cfg"]) == ("greeting\nmode\n", "", 0)
    assert run(core, ns, ["hostname"]) == ("app\n", "", 0)
    out, err, code = run(core, ns, ["cat", "/etc/cfg/nope"])
    assert (out, code) == ("", 1) and "No such file or directory" in err


def test_exec_exit_codes_stderr_and_shell_scripts(core, ns):
    app_objects(core, ns)
    assert run(core, ns, ["sh", "-c", "echo out; echo err >&2; exit 3"]) == ("out\n", "err\n", 3)
    assert run(core, ns, ["sh", "-c", "nosuchtool --flag"]) == ("", "sh: nosuchtool: not found\n", 127)
    assert run(core, ns, ["sh", "-c", "false || echo fallback; true && echo $MODE"]) == ("fallback\nprod\n", "", 0)
    assert run(core, ns, ["sh", "-c", "env | grep PASSWORD"]) == ("PASSWORD=s3cret\n", "", 0)
    # Not through a shell: the runtime cannot start a missing executable (an InternalError Status).
    resp = stream(core.connect_get_namespaced_pod_exec, "app", ns, command=["nosuchtool"], stdout=True,
                  stderr=True, _preload_content=False)
    resp.run_forever(timeout=10)
    err = json.loads(resp.read_channel(3))
    assert err["status"] == "Failure" and err["reason"] == "InternalError" and err["code"] == 500
    assert 'exec: "nosuchtool": executable file not found in $PATH' in err["message"]


def test_exec_stdin_is_read_until_the_client_closes_it(core, ns):
    app_objects(core, ns)
    resp = stream(core.connect_get_namespaced_pod_exec, "app", ns, command=["cat"], stdin=True, stdout=True,
                  stderr=True, tty=False, _preload_content=False)
    assert resp.subprotocol == "v5.channel.k8s.io"  # the close-stdin signal needs v5
    resp.write_stdin("line one\n")
    resp.write_stdin(b"line two\n")
    resp.close_channel(0)
    resp.run_forever(timeout=10)
    assert resp.read_stdout() == "line one\nline two\n" and resp.returncode == 0


def ws_connect(cluster, path: str, protocols: list[str], **kw) -> websocket.WebSocket:
    h = cluster.handle
    ctx = {"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": str(h.ca_path)}
    return websocket.create_connection("wss" + h.url[5:] + path, header=[f"Authorization: Bearer {h.token}"],
                                       subprotocols=protocols, sslopt=ctx, timeout=10, **kw)


def frames(ws) -> list[bytes]:
    out = []
    while True:
        op, frame = ws.recv_data_frame(True)
        if op == websocket.ABNF.OPCODE_CLOSE:
            return out
        out.append(frame.data)


def test_channel_protocol_frames(cluster, core, ns):
    app_objects(core, ns)
    path = f"/api/v1/namespaces/{ns}/pods/app/exec?command=sh&command=-c&command=echo%20hi%3B%20exit%202" \
           "&stdout=true&stderr=true"
    for proto in ("v4.channel.k8s.io", "v5.channel.k8s.io"):
        ws = ws_connect(cluster, path, [proto])
        assert ws.subprotocol == proto
        got = frames(ws)
        assert got[0] == b"\x01"  # an empty message on the lowest writable channel first
        assert got[1] == b"\x01hi\n"
        status = json.loads(got[-1][1:])
        assert got[-1][:1] == b"\x03" and status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
        assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "2"}]
    ws = ws_connect(cluster, path.replace("exit%202", "exit%200"), ["v4.base64.channel.k8s.io"])
    got = frames(ws)
    assert got[1] == b"1" + base64.b64encode(b"hi\n")
    assert json.loads(base64.b64decode(got[-1][1:])) == {"metadata": {}, "status": "Success"}


def test_refusals_are_worded_like_the_api_server_and_kubelet(cluster, core, ns):
    app_objects(core, ns, containers=("app", "sidecar"))
    core.create_namespaced_pod(ns, {"metadata": {"name": "pulling"}, "spec": {
        "containers": [{"name": "c", "image": IMAGE_MISSING}]}})
    wait_for(lambda: core.read_namespaced_pod("pulling", ns).spec.node_name, what="pulling scheduled")

    def refused(path: str, protocols=("v4.channel.k8s.io",)):
        with pytest.raises(websocket.WebSocketBadStatusException) as info:
            ws_connect(cluster, path, list(protocols))
        body = info.value.resp_body.decode()
        return info.value.status_code, (json.loads(body)["message"] if body.startswith("{") else body)

    base = f"/api/v1/namespaces/{ns}/pods"
    assert refused(f"{base}/ghost/exec?command=ls&stdout=true") == (404, 'pods "ghost" not found')
    assert refused(f"{base}/app/exec?command=ls&stdout=true") == (
        400, "a container name must be specified for pod app, choose one of: [app sidecar]")
    assert refused(f"{base}/app/exec?command=ls&stdout=true&container=nope") == (
        400, "container nope is not valid for pod app")
    assert refused(f"{base}/pulling/exec?command=ls&stdout=true") == (500, 'container not found ("c")')
    # v5 goes through the API server's stream translator: the kubelet's refusal comes as a Status.
    ws = ws_connect(cluster, f"{base}/pulling/exec?command=ls&stdout=true", ["v5.channel.k8s.io"])
    status = json.loads(frames(ws)[-1][1:])
    assert status["reason"] == "InternalError"
    assert status["message"] == 'Internal error occurred: unable to upgrade connection: container not found ("c")'

    h = cluster.handle
    req = urllib.request.Request(f"{h.url}{base}/app/exec?command=ls&container=app&stdout=true",
                                 headers={"Authorization": f"Bearer {h.token}"})
    with pytest.raises(urllib.error.HTTPError) as info:  # a plain GET is no upgrade
        urllib.request.urlopen(req, context=h.ssl_context(), timeout=10)
    assert info.value.code == 400 and json.loads(info.value.read())["message"] == "Upgrade request required"


def test_attach_streams_what_the_container_writes(core, ns):
    app_objects(core, ns)
    resp = stream(core.connect_get_namespaced_pod_attach, "app", ns, container="app", stdout=True, stderr=True,
                  stdin=False, tty=False, _preload_content=False)
    lines = wait_for(lambda: (lambda out: out if out.count("\n") >= 2 else None)(
        resp.peek_stdout(timeout=0.5)), what="two attached lines")
    assert "GET / 200 seq=" in lines
    core.delete_namespaced_pod("app", ns, grace_period_seconds=0)
    resp.run_forever(timeout=10)  # the container stopped: the session ends
    assert not resp.is_open() and resp.returncode == 0


def test_portforward_through_the_python_client(core, ns):
    app_objects(core, ns)
    pf = portforward(core.connect_get_namespaced_pod_portforward, "app", ns, ports="8080,9999")
    sock = pf.socket(8080)
    sock.sendall(b"GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n")
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and body == f"hello from app ({IMAGE_A})\n".encode()
    assert pf.error(8080) is None
    # Nothing listens on a port no container declares: the kubelet says so on the error channel.
    err = wait_for(lambda: pf.error(9999), what="error for port 9999")
    assert err.startswith("error forwarding port 9999 to pod ")
    assert "failed to connect to localhost:9999 inside namespace" in err and "connection refused" in err
    pf.close()


def test_discovery_lists_the_streaming_subresources(core):
    resources = {r.name: r for r in core.get_api_resources().resources}
    for sub, kind in (("exec", "PodExecOptions"), ("attach", "PodAttachOptions"),
                      ("portforward", "PodPortForwardOptions")):
        r = resources[f"pods/{sub}"]
        assert (r.kind, sorted(r.verbs), r.namespaced) == (kind, ["create", "get"], True)
        assert r.group is None and r.version is None


def test_exec_upgrades_a_post_too(cluster, core, ns):
    """The real API server routes exec/attach/portforward for GET and POST alike."""
    app_objects(core, ns)
    h = cluster.handle

    async def post_exec() -> list[bytes]:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(
                    f"{h.url}/api/v1/namespaces/{ns}/pods/app/exec?command=hostname&stdout=true", method="POST",
                    headers={"Authorization": f"Bearer {h.token}"}, protocols=("v4.channel.k8s.io",),
                    ssl=h.ssl_context()) as ws:
                assert ws.protocol == "v4.channel.k8s.io"
                return [msg.data async for msg in ws if msg.type == aiohttp.WSMsgType.BINARY]

    got = asyncio.run(post_exec())
    assert got[:2] == [b"\x01", b"\x01app\n"]
    assert json.loads(got[-1][1:]) == {"metadata": {}, "status": "Success"}


def test_spdy_upgrade_negotiates_the_stream_protocol(cluster, core, ns):
    """A SPDY/3.1 upgrade is answered 101 with the negotiated X-Stream-Protocol-Version, or refused
    as httpstream.Handshake does."""
    app_objects(core, ns)
    h = cluster.handle

    def upgrade(path: str, protocols: list[str]) -> tuple[int, dict, str]:
        conn = http.client.HTTPSConnection("127.0.0.1", h.port, context=h.ssl_context(), timeout=10)
        headers = {"Authorization": f"Bearer {h.token}", "Connection": "Upgrade", "Upgrade": "SPDY/3.1"}
        conn.putrequest("POST", path)
        for k, v in headers.items():
            conn.putheader(k, v)
        for p in protocols:
            conn.putheader("X-Stream-Protocol-Version", p)
        conn.endheaders()
        resp = conn.getresponse()
        body = "" if resp.status == 101 else resp.read().decode()
        conn.close()
        return resp.status, dict(resp.getheaders()), body

    exec_path = f"/api/v1/namespaces/{ns}/pods/app/exec?command=ls&stdout=true"
    code, headers, _ = upgrade(exec_path, ["v5.channel.k8s.io", "v4.channel.k8s.io"])
    assert code == 101 and headers["X-Stream-Protocol-Version"] == "v5.channel.k8s.io"
    assert headers["Upgrade"] == "SPDY/3.1"
    code, _, body = upgrade(exec_path, [])
    assert (code, body.strip()) == (400, "unable to upgrade: X-Stream-Protocol-Version is required")
    code, _, body = upgrade(exec_path, ["v9.channel.k8s.io"])
    assert code == 403 and "unable to negotiate protocol" in body
    code, headers, _ = upgrade(f"/api/v1/namespaces/{ns}/pods/app/portforward", ["portforward.k8s.io"])
    assert code == 101 and headers["X-Stream-Protocol-Version"] == "portforward.k8s.io"
