"""``pods/exec`` and ``pods/attach``, as kube-apiserver and the kubelet serve them.

Before the upgrade the API server's checks answer with a ``Status``: 404 for a missing pod, 400 for
a missing or unknown container (``a container name must be specified for pod P, choose one of:
[...]``, ``container C is not valid for pod P``) or an unscheduled pod (``pod P does not have a host
assigned``), 400 ``Upgrade request required`` for a plain request.

Carriers: WebSocket (``channels.py``: ``v5.channel.k8s.io`` - what kubectl 1.30+ and the Python
client ask for first, the API server's stream translator -, ``v4``, ``v3``, ``v2``,
``channel.k8s.io`` and ``[v4.]base64.channel.k8s.io``; 0 stdin, 1 stdout, 2 stderr, 3 error,
4 resize, v5's 255 closes stdin; first an empty message on the lowest writable channel) or SPDY/3.1
(``spdy.py``, ``X-Stream-Protocol-Version`` v5/v4/v3/v2: kubectl's fallback and older clients).
At the end the outcome goes on the error channel (v4+: a ``Status`` - ``Success``, or ``Failure``
with reason ``NonZeroExitCode`` and the exit code as the ``ExitCode`` cause, or an
``InternalError``; older protocols: the error text) and the connection closes.

The kubelet's side: a container that is not running is ``container not found ("C")`` (over v5 an
``InternalError`` on the error channel, as the translator reports the kubelet's refusal; otherwise
the kubelet's 500 before the upgrade, which kubectl shows as ``unable to upgrade connection: ...``).
exec runs the command with ``shell.py`` in a ``container.Container``; attach streams the container's
log lines (``podlogs.py``) from now on, until it stops.  Port-forward is ``portforward.py``.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections import OrderedDict

from aiohttp import web

from . import podlogs, portforward, shell, spdy
from .channels import ERROR, STDERR, STDOUT, V4, V5, Channels, is_websocket, negotiate, require_host, status
from .container import Container
from .registry import ApiError, bad_request
from .resources import PODS

EXEC_PROTOCOLS = (V5, V4, "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io",
                  "v4.base64.channel.k8s.io", "base64.channel.k8s.io")
SPDY_EXEC_PROTOCOLS = (V5, V4, "v3.channel.k8s.io", "v2.channel.k8s.io")
TRUE = podlogs.TRUE
WRITTEN: OrderedDict[str, dict] = OrderedDict()  # pod uid/container/containerID -> {path: bytes|None}


class Options:
    def __init__(self, request: web.Request, sub: str):
        q = request.query
        self.stdin, self.stdout, self.stderr = (q.get(k) in TRUE for k in ("stdin", "stdout", "stderr"))
        self.tty = q.get("tty") in TRUE
        self.command = q.getall("command", [])
        self.container = q.get("container") or None
        if sub == "exec" and not self.command:
            raise bad_request("you must specify at least 1 command")
        if not (self.stdin or self.stdout or self.stderr):
            raise bad_request("you must specify at least 1 of stdin, stdout, stderr")


async def handle(api, request: web.Request, ns: str, name: str, sub: str) -> web.StreamResponse:
    """Entry for ``pods/exec``, ``pods/attach`` and ``pods/portforward`` (GET or POST)."""
    if request.method not in ("GET", "POST"):
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    if sub == "portforward":
        return await portforward.handle(api, request, ns, name)
    pod = api.registry.get(PODS, ns, name).obj
    try:
        container = podlogs.pick_container(pod, request.query.get("container") or None)
    except podlogs.LogOptionsError as exc:
        raise bad_request(exc.message) from None
    require_host(pod)
    opts = Options(request, sub)
    running = _running(pod, container)
    refusal = web.Response(status=500, text=f'container not found ("{container}")')  # the kubelet's
    if spdy.is_upgrade(request):
        protocol = spdy.handshake(request, SPDY_EXEC_PROTOCOLS)
        if not running:
            return refusal
        ch = spdy.ExecStreams(protocol, _spdy_streams(opts, protocol))
        resp = await ch.open(request)
        if not ch.started:
            return resp
        reader = ch.reader
    elif is_websocket(request):
        protocol = negotiate(request, EXEC_PROTOCOLS)
        if not running and protocol != V5:  # v5 goes through the API server's stream translator
            return refusal
        resp = web.WebSocketResponse(protocols=(protocol,) if protocol else (), autoping=True, max_msg_size=0)
        await resp.prepare(request)
        ch = Channels(resp, protocol)
        await ch.send(STDOUT if opts.stdout else STDERR if opts.stderr else ERROR)
        reader = asyncio.ensure_future(ch.read())
    else:
        raise bad_request("Upgrade request required")
    task = asyncio.current_task()
    api.watch_tasks.add(task)
    try:
        if not running:
            msg = f'unable to upgrade connection: container not found ("{container}")'
            await ch.finish(status("InternalError", msg), msg)
        elif sub == "exec":
            await _exec(api, ch, pod, container, opts)
        else:
            await _attach(api, ch, pod, container, opts)
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        reader.cancel()
        api.watch_tasks.discard(task)
    return resp


def _spdy_streams(opts: Options, protocol: str) -> set[str]:
    """The streams a remotecommand client opens for these options (what the kubelet waits for)."""
    want = {"error"} | {k for k, on in (("stdin", opts.stdin), ("stdout", opts.stdout)) if on}
    if opts.stderr and not opts.tty:
        want.add("stderr")
    if opts.tty and protocol != "v2.channel.k8s.io":
        want.add("resize")
    return want


def _running(pod: dict, container: str) -> bool:
    st = pod.get("status") or {}
    for cs in (st.get("containerStatuses") or []) + (st.get("initContainerStatuses") or []):
        if cs.get("name") == container:
            return "running" in (cs.get("state") or {}) and not pod["metadata"].get("deletionTimestamp")
    return False


def _written(pod: dict, container: str) -> dict:
    """What execs wrote into this run of the container (a restart starts afresh); a bounded LRU."""
    cid = next((cs.get("containerID") or "" for cs in (pod.get("status") or {}).get("containerStatuses") or []
                if cs.get("name") == container), "")
    key = f"{pod['metadata']['uid']}/{container}/{cid}"
    WRITTEN[key] = WRITTEN.pop(key, None) or {}
    while len(WRITTEN) > 1000:
        WRITTEN.popitem(last=False)
    return WRITTEN[key]


def _lookup(api):
    def get(resource: str, ns: str, name: str):
        e = api.store.get(resource, ns, name)
        return e.obj if e is not None else None
    return get


async def _exec(api, ch: Channels, pod: dict, container: str, opts: Options) -> None:
    box = Container(pod, container, _lookup(api), _written(pod, container))
    argv = opts.command

    async def out(data: bytes, err: bytes = b"") -> None:
        if opts.tty:  # one terminal: stderr goes to it too, and it turns newlines into CR LF
            data = (data + err).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            err = b""
        if err and opts.stderr:  # first: a command's output is whole, and tar warns before it archives
            await ch.send(STDERR, err)
        if data and opts.stdout:
            await ch.send(STDOUT, data)

    if opts.stdin and shell.interactive(argv):
        code = await _repl(ch, shell.Shell(box), opts.tty, out)
    else:
        stdin = await ch.read_stdin() if opts.stdin and shell.reads_stdin(argv) else b""
        try:
            o, e, code = shell.run(box, argv, stdin)
        except shell.ExecFailed as exc:
            exec_id = hashlib.sha256(os.urandom(16)).hexdigest()
            msg = (f"error executing command in container: failed to exec in container: failed to start exec "
                   f'"{exec_id}": OCI runtime exec failed: exec failed: unable to start container process: '
                   f"{exc}: unknown")
            await ch.finish(status("InternalError", msg), msg)
            return
        await out(o, e)
    if code == 0:
        await ch.finish(status("Success"))
    else:
        detail = f"command '{' '.join(argv)}' exited with {code}: "
        await ch.finish(status("NonZeroExitCode", detail, code),
                        f"command terminated with non-zero exit code: {detail}")


async def _repl(ch: Channels, sh: shell.Shell, tty: bool, out) -> int:
    """An interactive ``sh``: one command per line of stdin (with a tty: echo and a prompt)."""
    prompt = b"/ # " if sh.vars.get("HOME", "/root") == "/root" else b"$ "
    if tty:
        await out(prompt)
    line = b""
    while not sh.exited:
        chunk = await ch.stdin.get()
        if chunk is None or (tty and b"\x04" in chunk and not line):
            if line.strip() and not tty:  # the last line, without its newline
                o, e, _ = sh.script(line.decode(errors="replace"))
                await out(o, e)
            break
        if tty:
            if b"\x03" in chunk:
                line = b""
                await out(b"^C\n" + prompt)
                continue
            await ch.send(STDOUT, chunk.replace(b"\r", b"\r\n"))  # the terminal echoes what is typed
            chunk = chunk.replace(b"\r", b"\n")
        line += chunk
        while b"\n" in line and not sh.exited:
            cmd, line = line.split(b"\n", 1)
            o, e, _ = sh.script(cmd.decode(errors="replace"))
            await out(o, e)
            if tty and not sh.exited:
                await out(prompt)
    return sh.status


async def _attach(api, ch: Channels, pod: dict, container: str, opts: Options) -> None:
    """What the container writes from now on, until it stops (its log lines are its output)."""
    try:
        run = podlogs.select_run(pod, container)
    except podlogs.LogUnavailable as exc:
        await ch.finish(status("InternalError", str(exc)), str(exc))
        return
    if api.kubelet is not None:
        run.start_ns = api.kubelet.start_ns(pod["metadata"]["uid"], run.container_id) or run.start_ns
    reader = podlogs.LogReader(run, podlogs.LogOptions(tail_lines=0), api.log_interval)
    ns, name, uid = pod["metadata"].get("namespace", ""), pod["metadata"]["name"], pod["metadata"]["uid"]
    while not ch.gone and not api.stopping.is_set():
        due = reader.next_due()
        if due is None:
            break
        await asyncio.sleep(min(max(due - time.time(), 0.002), 0.25))
        e = api.store.get(PODS.key, ns, name)
        live = e is not None and e.obj["metadata"]["uid"] == uid and podlogs.still_running(e.obj, run)
        chunk = reader.advance(ended_ns=None if live else time.time_ns())
        if chunk and opts.stdout:
            await ch.send(STDOUT, chunk.replace(b"\n", b"\r\n") if opts.tty else chunk)
    if run.crash:
        await ch.finish(status("NonZeroExitCode", "command '' exited with 1: ", 1), "exit code 1")
    else:
        await ch.finish(status("Success"))
